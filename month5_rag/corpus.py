"""The generated evaluation set: company-style PDFs and DOCX files with planted facts, and questions.

    python -m month5_rag eval --set generated        # regenerates it into a temporary folder

`write_generated_set(folder, seed)` writes five PDFs (fpdf2, several pages each, facts on known pages)
and three DOCX files (python-docx, headings, a table) for a made-up company, plus `questions.json`:
each question with its file, page (PDF) or heading and paragraph (DOCX), the answer span, and whether it
is answerable. The same fact template is planted for several entities (hotel limits for six cities,
revenue for six regions...), so a retriever must match the entity, not just the topic; the
unanswerable questions ask about entities of the same templates that were never planted, and about
topics the documents never mention. Everything is a function of the seed.

This generator writes its own questions, so it is not the only judge: `month5_rag/eval_sets/handwritten/`
holds a second set, written by hand, in other formats (Markdown, HTML, text) and other phrasing.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

COMPANY = "Aldermoor Systems"


@dataclass
class Question:
    id: str
    question: str
    answerable: bool
    file: str = ""  # file name
    page: int | None = None  # PDF page, 1-based
    heading: str = ""
    paragraph: int | None = None
    answer: str = ""  # the span that answers it, verbatim in the document
    kind: str = ""  # fact template, or "absent-entity" / "off-topic"


@dataclass
class FactType:
    key: str
    sentence: str  # planted sentence; {e} the entity, {v} the value
    question: str
    entities: tuple[str, ...] = ("",)
    held_out: int = 0  # entities kept out of the documents: their questions are unanswerable
    values: tuple = ()  # candidates for {v}, sampled without replacement
    answer: str = "{v}"


FILLER = [
    "{team} reviews this section {freq} and publishes changes on the intranet.",
    "Questions about this {doc} can be raised with your line manager or the {team} team.",
    "Where local law sets a stricter rule, the local rule applies and this {doc} is read accordingly.",
    "Managers are expected to explain the {topic} rules to new members of their teams.",
    "Exceptions to the {topic} rules are rare and must be recorded in writing.",
    "The {team} team keeps a record of decisions taken under this {doc}.",
    "Employees should read the {topic} guidance before their first {event}.",
    "This {doc} replaces earlier versions and any informal arrangements on {topic}.",
    "Feedback on the {topic} process is collected {freq} through a short survey.",
    "Templates for {topic} requests are available in the shared document library.",
    "Any misuse of the {topic} process may lead to disciplinary action.",
    "Teams are encouraged to plan {topic} matters well in advance of the {event}.",
]
TEAMS = ["People Operations", "Finance", "Information Security", "Facilities", "Procurement", "Legal"]
FREQS = ["every quarter", "twice a year", "once a year", "every month"]
EVENTS = ["business trip", "project kick-off", "performance review", "audit", "team offsite"]


def _filler(rng: random.Random, topic: str, doc: str, n: int) -> str:
    picks = rng.sample(FILLER, n)
    return " ".join(p.format(team=rng.choice(TEAMS), freq=rng.choice(FREQS), doc=doc, topic=topic,
                             event=rng.choice(EVENTS)) for p in picks)


CITIES = ("Zurich", "Madrid", "Vienna", "Stockholm", "Prague", "Dublin", "Lisbon", "Helsinki")
COUNTRIES = ("Japan", "Brazil", "Canada", "India", "Kenya", "Mexico", "Norway")
SYSTEMS = ("payroll", "CRM", "ERP", "wiki", "ticketing", "build server", "email archive")
REGIONS = ("Nordics", "DACH", "Iberia", "Benelux", "United Kingdom", "Baltics", "Balkans")
PRODUCTS = ("X200 scanner", "K7 router", "Nova tablet", "Atlas gateway", "Orion camera", "Vega sensor")
SITES = ("Leeds", "Porto", "Gdansk", "Lyon", "Tartu", "Bologna")

# Documents: (file, title, topic, [(section title, [fact types])]); one PDF page or DOCX heading per section.
PDFS = {
    "travel_expense_policy.pdf": ("Travel and Expense Policy", "travel", [
        ("1. Scope", []),
        ("2. Accommodation", [FactType("hotel", "Hotel stays in {e} are reimbursed up to {v} EUR per night, "
                                                "breakfast included.",
                                       "What is the maximum nightly hotel rate reimbursed in {e}?", CITIES[:5], 2,
                                       tuple(range(140, 320, 5)), "{v} EUR")]),
        ("3. Meals and allowances", [FactType("perdiem", "The daily meal allowance for trips to {e} is {v} EUR.",
                                              "How much is the daily meal allowance for a trip to {e}?",
                                              COUNTRIES[:5], 2, tuple(range(35, 95)), "{v} EUR")]),
        ("4. Private cars", [FactType("mileage", "Private car use is reimbursed at {v} cents per kilometre.",
                                      "At what rate is private car use reimbursed?", values=tuple(range(21, 48)),
                                      answer="{v} cents")]),
        ("5. Approvals", []),
    ]),
    "employee_handbook.pdf": ("Employee Handbook", "leave", [
        ("1. Welcome", []),
        ("2. Leave", [FactType("leave", "Employees receive {v} days of paid annual leave per calendar year.",
                               "How many days of paid annual leave do employees receive per year?",
                               values=tuple(range(24, 33)), answer="{v} days"),
                      FactType("parental", "Parental leave is paid at full salary for the first {v} weeks.",
                               "For how many weeks is parental leave paid at full salary?",
                               values=tuple(range(10, 27)), answer="{v} weeks")]),
        ("3. Working time", [FactType("core", "Core working hours run from {v} to 15:00, Monday to Friday.",
                                      "When do core working hours start?", values=("09:30", "10:00", "09:00"),
                                      answer="{v}"),
                             FactType("overtime", "Overtime beyond {v} hours per month must be approved by a "
                                                  "department head.",
                                      "How many overtime hours per month are allowed before a department head "
                                      "must approve?", values=tuple(range(8, 30)), answer="{v} hours")]),
        ("4. Probation", [FactType("probation", "The probation period for new hires lasts {v} months.",
                                   "How long is the probation period for new hires?", values=(3, 4, 6),
                                   answer="{v} months")]),
    ]),
    "it_security_standard.pdf": ("IT Security Standard", "security", [
        ("1. Accounts and passwords", [FactType("password", "Passwords must be at least {v} characters long.",
                                                "What is the minimum password length?", values=(12, 14, 16),
                                                answer="{v} characters"),
                                       FactType("lock", "Laptops lock automatically after {v} minutes of "
                                                        "inactivity.",
                                                "After how many minutes of inactivity do laptops lock?",
                                                values=(3, 5, 7, 10), answer="{v} minutes")]),
        ("2. Incidents", [FactType("hotline", "Security incidents are reported to the hotline on extension {v}.",
                                   "Which phone extension is the security incident hotline?",
                                   values=tuple(range(4100, 4999, 7)), answer="{v}")]),
        ("3. Backups", [FactType("backup", "Backups of the {e} system are kept for {v} days.",
                                 "How long are backups of the {e} system kept?", SYSTEMS[:5], 2,
                                 tuple(range(14, 400, 3)), "{v} days")]),
    ]),
    "q3_financial_report.pdf": ("Third Quarter Financial Report", "finance", [
        ("1. Summary", [FactType("headcount", "Headcount at the end of the quarter was {v} employees.",
                                 "What was the headcount at the end of the third quarter?",
                                 values=tuple(range(900, 1600, 13)), answer="{v} employees")]),
        ("2. Revenue by region", [FactType("revenue", "Revenue in the {e} region reached {v} million EUR in the "
                                                      "third quarter.",
                                           "How much revenue did the {e} region bring in during the third quarter?",
                                           REGIONS[:5], 2, tuple(x / 10 for x in range(105, 990, 7)),
                                           "{v} million EUR")]),
        ("3. Outlook", []),
    ]),
    "product_datasheet.pdf": ("Product Datasheet", "product", [
        ("1. Weights", [FactType("weight", "The {e} weighs {v} grams.", "How much does the {e} weigh?",
                                 PRODUCTS[:4], 2, tuple(range(180, 990, 11)), "{v} grams")]),
        ("2. Batteries", [FactType("battery", "The battery of the {e} lasts up to {v} hours.",
                                   "How long does the battery of the {e} last?", PRODUCTS[:4], 2,
                                   tuple(range(6, 60)), "{v} hours")]),
    ]),
}
DOCXS = {
    "onboarding_guide.docx": ("Onboarding Guide", "onboarding", [
        ("First day", [FactType("badge", "New employees collect their badge from the {v} on their first day.",
                                "Where do new employees collect their badge?",
                                values=("reception desk", "security office", "facilities kiosk"))]),
        ("Buddy programme", [FactType("buddy", "The onboarding buddy programme lasts {v} weeks.",
                                      "How long does the onboarding buddy programme last?", values=(4, 6, 8, 12),
                                      answer="{v} weeks")]),
        ("Equipment", [FactType("portal", "Equipment requests go through the internal portal called {v}.",
                                "What is the portal for equipment requests called?",
                                values=("Beacon", "Harbor", "Lantern", "Compass"))]),
    ]),
    "procurement_procedure.docx": ("Procurement Procedure", "procurement", [
        ("Approval limits", [FactType("approval", "Purchases above {v} EUR need the approval of the chief "
                                                  "financial officer.",
                                      "Above what amount do purchases need the chief financial officer's approval?",
                                      values=(25000, 40000, 50000), answer="{v} EUR")]),
        ("Suppliers", [FactType("suppliers", "Preferred suppliers are reviewed every {v} months.",
                                "How often are preferred suppliers reviewed?", values=(6, 12, 18, 24),
                                answer="{v} months")]),
    ]),
    "facilities_manual.docx": ("Facilities Manual", "facilities", [
        ("Opening hours", [FactType("opening", "The {e} office opens at {v} on weekdays.",
                                    "What time does the {e} office open on weekdays?", SITES[:4], 2,
                                    ("06:30", "07:00", "07:15", "07:30", "07:45", "08:00"), "{v}")]),
        ("Parking", [FactType("parking", "Visitor parking at the {e} office has {v} spaces.",
                              "How many visitor parking spaces does the {e} office have?", SITES[:4], 2,
                              tuple(range(4, 60)), "{v} spaces")]),
    ]),
}
OFF_TOPIC = [
    "Can employees bring their dogs to the office?",
    "Which company car models can managers choose from?",
    "How do stock options vest for senior engineers?",
    "What is on the cafeteria menu on Fridays?",
    "What is the dress code for client meetings?",
    "Does the company pay for gym memberships?",
    "How large is the relocation bonus for new hires from abroad?",
    "How long can employees take a sabbatical?",
]


def _plant(fact: FactType, rng: random.Random) -> list[tuple[str, str, str]]:
    """(entity, value, sentence) for each planted entity."""
    values = rng.sample(list(fact.values), len(fact.entities))
    return [(e, str(v), fact.sentence.format(e=e, v=v)) for e, v in zip(fact.entities, values)]


def _held_out(fact: FactType) -> list[str]:
    pools = (CITIES, COUNTRIES, SYSTEMS, REGIONS, PRODUCTS, SITES)
    pool = next((p for p in pools if fact.entities[0] in p), ())
    return [e for e in pool if e not in fact.entities][:fact.held_out]


def _section_paragraphs(rng: random.Random, topic: str, doc: str, planted: list[str]) -> list[str]:
    """3-4 paragraphs of filler; each planted sentence goes into a random paragraph at a random place."""
    paragraphs = [_filler(rng, topic, doc, 3) for _ in range(rng.randint(3, 4))]
    for sentence in planted:
        i = rng.randrange(len(paragraphs))
        parts = paragraphs[i].split(". ")
        parts.insert(rng.randint(0, len(parts)), sentence.rstrip("."))
        paragraphs[i] = ". ".join(p.rstrip(".") for p in parts) + "."
    return paragraphs


def _section_questions(facts: list[FactType], rng: random.Random, file: str):
    """(planted sentences, [(question, its planted sentence or None)]) for one section."""
    sentences, questions = [], []
    for fact in facts:
        for e, v, sentence in _plant(fact, rng):
            sentences.append(sentence)
            questions.append((Question("", fact.question.format(e=e), True, file, answer=fact.answer.format(v=v),
                                       kind=fact.key), sentence))
        questions += [(Question("", fact.question.format(e=e), False, kind="absent-entity"), None)
                      for e in _held_out(fact)]
    return sentences, questions


def write_generated_set(folder: str | Path, seed: int = 0) -> list[Question]:
    """Write the documents into `folder`/docs and the questions into `folder`/questions.json."""
    from docx import Document
    from fpdf import FPDF

    folder = Path(folder)
    docs = folder / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    questions: list[Question] = []
    for file, (title, topic, sections) in PDFS.items():
        pdf = FPDF(format="A4")
        pdf.set_auto_page_break(True, margin=15)
        pdf.set_title(f"{COMPANY} - {title}")
        for page_no, (section, facts) in enumerate(sections, start=1):
            pdf.add_page()
            pdf.set_font("Helvetica", style="B", size=14)
            pdf.multi_cell(0, 8, f"{COMPANY} - {title}\n{section}")
            pdf.ln(3)
            pdf.set_font("Helvetica", size=11)
            sentences, section_questions = _section_questions(facts, rng, file)
            for paragraph in _section_paragraphs(rng, topic, title.lower(), sentences):
                pdf.multi_cell(0, 6, paragraph)
                pdf.ln(2)
            if pdf.page_no() != page_no:
                raise RuntimeError(f"{file}: section {section!r} overflowed its page")
            for q, sentence in section_questions:
                q.page = page_no if sentence else None
                questions.append(q)
        pdf.output(str(docs / file))
    for file, (title, topic, sections) in DOCXS.items():
        document = Document()
        document.add_heading(f"{COMPANY} {title}", level=1)
        paragraph_no = 1  # paragraphs as month5_rag.documents numbers them: headings count
        for section, facts in sections:
            document.add_heading(section, level=2)
            paragraph_no += 1
            sentences, section_questions = _section_questions(facts, rng, file)
            paragraphs = _section_paragraphs(rng, topic, title.lower(), sentences)
            for text in paragraphs:
                document.add_paragraph(text)
            for q, sentence in section_questions:
                if sentence:
                    q.heading = f"{COMPANY} {title} > {section}"
                    q.paragraph = paragraph_no + 1 + next(i for i, t in enumerate(paragraphs)
                                                          if sentence.rstrip(".") in t)
                questions.append(q)
            paragraph_no += len(paragraphs)
        if file == "facilities_manual.docx":  # a table, read row by row
            document.add_heading("Site contacts", level=2)
            table = document.add_table(rows=1, cols=2)
            table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Site", "Contact"
            for site in SITES[:4]:
                row = table.add_row()
                row.cells[0].text, row.cells[1].text = site, f"{site.lower()}-facilities@aldermoor.example"
        document.save(str(docs / file))
    questions += [Question("", q, False, kind="off-topic") for q in OFF_TOPIC]
    for i, q in enumerate(questions):
        q.id = f"gen-{i:03d}"
    (folder / "questions.json").write_text(json.dumps([asdict(q) for q in questions], indent=1) + "\n")
    return questions


@dataclass
class EvalSet:
    name: str
    folder: Path
    questions: list[Question] = field(default_factory=list)


def load_questions(path: str | Path) -> list[Question]:
    return [Question(**q) for q in json.loads(Path(path).read_text(encoding="utf-8"))]


HANDWRITTEN = Path(__file__).resolve().parent / "eval_sets" / "handwritten"


def handwritten_set() -> EvalSet:
    """The second set: hand-written Markdown, HTML and text policies and hand-phrased questions."""
    return EvalSet("handwritten", HANDWRITTEN / "docs", load_questions(HANDWRITTEN / "questions.json"))


def generated_set(folder: str | Path, seed: int = 0) -> EvalSet:
    folder = Path(folder)
    if not (folder / "questions.json").is_file():
        write_generated_set(folder, seed)
    return EvalSet("generated", folder / "docs", load_questions(folder / "questions.json"))


def write_long_pdf(path: str | Path, pages: int, distinct: int = 10) -> Path:
    """A `pages`-page PDF for throughput and memory runs: `distinct` pages of policy prose written by
    fpdf2, repeated by pypdf (fpdf2 alone takes ~30 s for 1,000 pages here)."""
    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(pages)
    pdf = FPDF(format="A4")
    for _ in range(distinct):
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        for _ in range(4):
            pdf.multi_cell(0, 6, _filler(rng, rng.choice(["travel", "security", "leave", "finance"]), "policy", 6))
            pdf.ln(2)
    tmp = path.with_suffix(".part.pdf")
    pdf.output(str(tmp))
    source = PdfReader(tmp)
    writer = PdfWriter()
    for i in range(pages):
        writer.add_page(source.pages[i % distinct])
    with open(path, "wb") as f:
        writer.write(f)
    tmp.unlink()
    return path
