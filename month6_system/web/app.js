// The chat page: the same OpenAI routes any client uses, with the API key from the login box.
// Every text from the server (answers, documents, memory) goes in with textContent, never as HTML.
"use strict";

const MODEL = "hybrid-assistant";
const $ = (id) => document.getElementById(id);
const state = {
  key: localStorage.getItem("hybrid-api-key") || "",
  conversation: sessionStorage.getItem("hybrid-conversation") || `web-${crypto.randomUUID()}`,
};
sessionStorage.setItem("hybrid-conversation", state.conversation);

function headers(extra = {}) {
  return state.key ? { ...extra, Authorization: `Bearer ${state.key}` } : extra;
}

async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error ? data.error.message : `${response.status} ${response.statusText}`);
  return data;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// -- chat -------------------------------------------------------------------------------------------
async function send(text) {
  $("messages").append(el("li", text, "user"));
  const answer = el("li", "", "assistant streaming");
  const body = el("span", "", "text");
  answer.append(body);
  $("messages").append(answer);
  $("send").disabled = true;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ model: MODEL, stream: true, messages: [{ role: "user", content: text }],
                             metadata: { conversation_id: state.conversation } }),
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error(data.error ? data.error.message : `${response.status} ${response.statusText}`);
    }
    await readEvents(response.body, (event) => {
      if (event.error) throw new Error(event.error.message);
      const choice = event.choices && event.choices[0];
      if (choice && choice.delta && choice.delta.content) body.textContent += choice.delta.content;
      if (event.trace) answer.append(describe(event.trace));
    });
    answer.classList.remove("streaming");
    answer.classList.add("done");
  } catch (err) {
    answer.className = "error";
    body.textContent = `Error: ${err.message}`;
  } finally {
    $("send").disabled = false;
    refreshMemory();
  }
}

// Server-sent events: `data: {json}` blocks separated by a blank line, ended by `data: [DONE]`.
async function readEvents(stream, onEvent) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data === "[DONE]") return;
      if (data) onEvent(JSON.parse(data));
    }
  }
}

// The trace under an answer: the expert, the tools that ran, the citations (each opens its evidence).
function describe(trace) {
  const meta = el("div", undefined, "meta");
  if (trace.expert) {
    meta.append(el("span", `${trace.expert.name} expert`, "expert"),
                el("span", ` (p=${Number(trace.expert.probability).toFixed(2)})`));
  }
  for (const step of trace.tool_steps || []) {
    meta.append(el("span", ` · ${step.tool} ${step.ok ? "" : "failed "}${(step.latency_s * 1000).toFixed(0)} ms`,
                   "tool-step"));
  }
  const citations = trace.citations || [];
  if (citations.length) {
    const line = el("div", undefined, "citations");
    for (const citation of citations) {
      const button = el("button", citation, "citation");
      button.type = "button";
      button.addEventListener("click", () => showEvidence(citation, trace));
      line.append(button);
    }
    meta.append(line);
  }
  return meta;
}

function showEvidence(citation, trace) {
  const list = $("evidence-list");
  list.replaceChildren();
  for (const step of trace.tool_steps || []) {
    for (const item of (step.result && step.result.evidence) || []) {
      if (citation.includes(item.locator)) list.append(el("li", item.sentence));
    }
  }
  if (!list.children.length) list.append(el("li", "(no evidence text in the trace)"));
  $("evidence-citation").textContent = citation;
  $("evidence").hidden = false;
}

// -- documents and memory ---------------------------------------------------------------------------
async function upload(files) {
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  const report = $("upload-report");
  report.replaceChildren(el("li", `uploading ${files.length} file(s)...`));
  try {
    const result = await api("POST", "/v1/documents", form);
    report.replaceChildren(...result.files.map((f) => {
      const name = f.path.split("/").pop();
      const detail = f.error ? `error: ${f.error}` : `${f.status}, ${f.chunks} chunks`;
      return el("li", `${name}: ${detail}`, f.error ? "status-error" : "status-done");
    }));
  } catch (err) {
    report.replaceChildren(el("li", `upload failed: ${err.message}`, "status-error"));
  }
  refreshDocuments();
}

async function refreshDocuments() {
  try {
    const { data } = await api("GET", "/v1/documents");
    $("document-list").replaceChildren(...data.map((doc) => {
      const item = el("li", `${doc.name} (${doc.status}, ${doc.chunks} chunks) `, `status-${doc.status}`);
      const remove = el("button", "delete");
      remove.type = "button";
      remove.addEventListener("click", async () => {
        await api("DELETE", `/v1/documents/${encodeURIComponent(doc.name)}`).catch((e) => alert(e.message));
        refreshDocuments();
      });
      item.append(remove);
      return item;
    }));
  } catch (err) {
    $("document-list").replaceChildren(el("li", err.message, "status-error"));
  }
}

async function refreshMemory() {
  try {
    const { data } = await api("GET", "/v1/memory");
    $("memory-list").replaceChildren(...data.map((m) => el("li", `${m.role}: ${m.content}`)));
  } catch (err) {
    $("memory-list").replaceChildren(el("li", err.message, "status-error"));
  }
}

async function login(key) {
  state.key = key.trim();
  localStorage.setItem("hybrid-api-key", state.key);
  try {
    await api("GET", "/v1/models");
    $("login-status").textContent = state.key ? "key accepted" : "no key (open server)";
  } catch (err) {
    $("login-status").textContent = err.message;
  }
  refreshDocuments();
  refreshMemory();
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = state.key;
  $("login").addEventListener("submit", (e) => { e.preventDefault(); login($("api-key").value); });
  $("ask").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("prompt").value.trim();
    if (text) { $("prompt").value = ""; send(text); }
  });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask").requestSubmit(); }
  });
  $("upload").addEventListener("submit", (e) => {
    e.preventDefault();
    if ($("files").files.length) upload($("files").files);
  });
  $("forget").addEventListener("click", async () => {
    await api("DELETE", "/v1/memory").catch((e) => alert(e.message));
    refreshMemory();
  });
  $("close-evidence").addEventListener("click", () => { $("evidence").hidden = true; });
  login(state.key);
});
