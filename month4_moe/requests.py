"""Labelled requests for the router: a generator with three splits, and a second set written by hand.

- `make_requests(split, n, seed)`: whole user requests labelled code / math / text / chat, the labels taking
  turns (any prefix is balanced). The splits are kept apart the way month 2's tool-call splits are: every
  domain has request templates of its own per split (`TEMPLATES[domain][split]`), the free-text slots
  (programming tasks, story items, writing topics, chat topics...) come from disjoint lists, and so do the
  openers and closers said around a request ("Hi! ", " Thanks!"). Numbers are random in every split. "train" fits the
  classifier, "val" calibrates it (temperature, fallback threshold), "heldout" scores it.
- `HANDWRITTEN`: 120 requests written by hand in other styles (lowercase, typos, longer context, several
  sentences, questions about the assistant itself), none from a template: the second evaluation set. A
  held-out split of one's own generator overstates; this set shows by how much.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from month4_moe.experts import DOMAINS

SPLITS = ("train", "val", "heldout")


@dataclass(frozen=True)
class Request:
    text: str
    label: str  # one of DOMAINS
    template: str = ""


TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "code": {
        "train": (
            "Write a Python function that {task}.",
            "How do I {task} in {lang}?",
            "My {lang} code throws {error}. How do I fix it?",
            "What does this code do? {snippet}",
            "Can you write a {lang} script to {task}?",
            "Explain the difference between {concept} in {lang}.",
            "Refactor this function to be cleaner: {snippet}",
            "Why do I get {error} in my {lang} program?",
        ),
        "val": ("Implement a function to {task} in {lang}.", "Debug this for me: {snippet}",
                "Give me {lang} code that can {task}."),
        "heldout": (
            "I need a snippet that will {task}, preferably in {lang}.",
            "Getting {error} when I run my program, any idea why?",
            "Please review my code: {snippet}",
            "What's the idiomatic {lang} way to {task}?",
            "Could you help me unit-test a function that can {task}?",
        ),
    },
    "math": {
        "train": (
            "What is {a} {op} {b}?",
            "Solve for x: {a}x + {b} = {c}.",
            "{name} has {a} {item} and buys {b} more. How many {item} does {name} have?",
            "What is {p}% of {n}?",
            "Compute the derivative of {poly}.",
            "What is the square root of {square}?",
            "Find the area of a circle with radius {r}.",
            "Is {n} a prime number?",
        ),
        "val": ("Calculate {a} {op} {b}.", "If a car travels {a} km in {r} hours, what is its average speed?",
                "Simplify the fraction {a}/{b}."),
        "heldout": (
            "how much is {a} {op_word} {b}",
            "A rectangle is {a} cm by {b} cm. What's its perimeter?",
            "Integrate {poly} with respect to x.",
            "What's the probability of rolling a {k} with a fair die?",
            "Convert {a} kilometres to miles.",
            "{name} splits {n} {item} equally among {k} friends. How many does each get?",
        ),
    },
    "text": {
        "train": (
            "Summarize this paragraph: {para}",
            "Rewrite this sentence to sound more formal: {sentence}",
            "Fix the grammar in this sentence: {sentence}",
            "Write a short poem about {topic}.",
            "Translate '{sentence}' into {language}.",
            "Write an email to {person} about {topic}.",
            "Give me a catchy title for an article about {topic}.",
            "Proofread my essay introduction: {para}",
        ),
        "val": ("Paraphrase this: {sentence}", "Draft a cover letter for a {job} position.",
                "Write a haiku about {topic}."),
        "heldout": (
            "Can you make this paragraph shorter? {para}",
            "Compose a limerick on {topic}.",
            "Turn these notes into a proper paragraph: {notes}",
            "Suggest a better word than '{word}' for my sentence: {sentence}",
            "Write a product description for {product}.",
        ),
    },
    "chat": {
        "train": (
            "Hi, how are you?",
            "Tell me a joke about {thing}.",
            "I'm feeling {feeling} today.",
            "What should I do this weekend?",
            "Can you recommend a good {thing}?",
            "What's your name?",
            "Thanks for the help, {name}!",
            "Good {daytime}!",
            "Do you like {thing}?",
            "I had a {adjective} day at work.",
        ),
        "val": ("Hey there, {name}!", "Any ideas for a {occasion} gift?",
                "Tell me something interesting about {thing}."),
        "heldout": (
            "yo what's up",
            "I'm {feeling}, cheer me up please",
            "What would you do on a rainy {day}?",
            "Who are you, actually?",
            "I just got a new {pet}!",
            "How's your {daytime} going?",
        ),
    },
}

_SPLIT_SLOTS: dict[str, dict[str, tuple[str, ...]]] = {
    "task": {
        "train": ("reverse a string", "read a CSV file", "sort a list of dictionaries by a key",
                  "remove duplicates from a list", "parse JSON from a file", "count the words in a file",
                  "merge two sorted lists", "check if a number is prime", "connect to a SQLite database",
                  "find the longest word in a sentence", "convert a date string to a timestamp"),
        "val": ("rotate a matrix", "read environment variables", "zip two lists together"),
        "heldout": ("flatten a nested list", "validate an email address", "compute a moving average",
                    "retry an HTTP request with backoff", "group records by a field"),
    },
    "lang": {"train": ("Python", "JavaScript", "Java", "C++", "Rust", "Go"), "val": ("PHP", "Swift"),
             "heldout": ("TypeScript", "Kotlin", "Ruby", "C#")},
    "error": {
        "train": ("a KeyError", "an IndexError", "a NullPointerException", "a segmentation fault",
                  "TypeError: 'NoneType' object is not subscriptable"),
        "val": ("a ZeroDivisionError",),
        "heldout": ("an AttributeError", "a stack overflow", "ModuleNotFoundError: No module named 'numpy'"),
    },
    "snippet": {
        "train": ("for i in range(len(xs)): print(xs[i])", "def f(x): return x*2",
                  "SELECT * FROM users WHERE id = 1", "x = [i for i in range(10) if i % 2]"),
        "val": ("print(sum(map(int, input().split())))",),
        "heldout": ("while True: pass", "const add = (a, b) => a + b;", "int main() { return 0; }"),
    },
    "concept": {"train": ("a list and a tuple", "== and is", "a class and an object", "threads and processes"),
                "val": ("an interface and an abstract class",),
                "heldout": ("a stack and a queue",)},
    "name": {"train": ("Anna", "Tom", "Maria", "Omar"), "val": ("Kim", "Leo", "Ana"), "heldout": ("Priya", "Diego")},
    "item": {"train": ("apples", "marbles", "books"), "val": ("pens",), "heldout": ("cookies", "stamps")},
    "poly": {"train": ("x^2 + 3x", "5x^3 - 2x", "sin(x) * x"), "val": ("e^x + x",),
             "heldout": ("3x^2 + 2", "cos(x)")},
    "para": {
        "train": ("The city council met on Tuesday to discuss the new park. Residents spoke for and against the "
                  "plan, and a vote was postponed until next month.",
                  "Our quarterly sales rose by ten percent, mostly thanks to the new product line, while costs "
                  "stayed flat."),
        "val": ("The festival drew a record crowd this year, although the rain on Sunday kept many people home.",),
        "heldout": ("Remote work has changed how teams communicate. Meetings are shorter, written updates are "
                    "more common, and offices are quieter than before.",
                    "The museum reopened after two years of renovation, with a new wing for modern art."),
    },
    "sentence": {
        "train": ("me and him goes to the store yesterday", "I wants to apply for this job",
                  "the weather is nice today", "we was late for the meeting"),
        "val": ("she don't like coffee", "him and me was there early", "I has finished the report"),
        "heldout": ("their going to the party tonight", "the results was better then expected"),
    },
    "topic": {"train": ("the ocean", "autumn leaves", "friendship", "a rainy city", "the moon"),
              "val": ("spring", "a quiet library", "snowfall"),
              "heldout": ("a lighthouse", "old trains", "the desert at night")},
    "language": {"train": ("French", "Spanish", "German"), "val": ("Italian",), "heldout": ("Portuguese",)},
    "person": {"train": ("my manager", "a client", "my landlord"), "val": ("a professor",),
               "heldout": ("my neighbour",)},
    "job": {"val": ("marketing assistant", "nurse")},
    "notes": {"heldout": ("meeting moved to Friday; budget approved; need new designer",
                          "trip: train 9am, hotel near station, museum on day two")},
    "word": {"heldout": ("good", "big", "said")},
    "product": {"heldout": ("a bamboo water bottle", "noise-cancelling headphones", "a handmade wool scarf")},
    "thing": {"train": ("cats", "coffee", "movies", "books", "music"), "val": ("space", "history", "volcanoes"),
              "heldout": ("board games",)},
    "feeling": {"train": ("sad", "happy", "tired", "anxious"), "val": ("excited",), "heldout": ("down", "bored")},
    "daytime": {"train": ("morning", "evening", "night"), "val": ("afternoon",), "heldout": ("weekend", "day")},
    "adjective": {"train": ("rough", "great", "long", "strange"), "val": ("busy",), "heldout": ("weird",)},
    "occasion": {"val": ("birthday", "wedding", "housewarming")},
    "day": {"heldout": ("Sunday", "afternoon", "holiday")},
    "pet": {"heldout": ("puppy", "kitten", "parrot", "hamster")},
}
OPS = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}
# Said around any request of any domain (so they tell nothing about the label); each split has its own.
OPENERS = {"train": ("", "", "Hi! ", "Hello. ", "Quick question: ", "Hey, "), "val": ("", "Excuse me, ", "So, "),
           "heldout": ("", "Hiya, ", "Um, ", "OK so ")}
CLOSERS = {"train": ("", "", " Thanks!", " Please.", " :)"), "val": ("", " Thank you."),
           "heldout": ("", " Cheers.", " ty")}


def _fill(template: str, split: str, rng: random.Random) -> str:
    """Fill every {slot}: numbers at random in every split, words from the split's own list."""
    n = rng.randint(2, 200)
    op = rng.choice(tuple(OPS))
    numbers = {"a": rng.randint(2, 999), "b": rng.randint(2, 999), "c": rng.randint(2, 999), "n": n,
               "p": rng.choice((5, 10, 15, 20, 25, 50, 75)), "r": rng.randint(1, 12), "k": rng.randint(1, 6),
               "square": rng.randint(2, 30) ** 2, "op": op, "op_word": OPS[op]}
    words = {slot: rng.choice(choices[split]) for slot, choices in _SPLIT_SLOTS.items()
             if f"{{{slot}}}" in template}
    return template.format(**numbers, **words)


def make_requests(split: str, n: int, seed: int = 0) -> list[Request]:
    """`n` distinct labelled requests of `split`, the domains taking turns. The same (split, n, seed) always
    gives the same list, and a longer list starts with the shorter one."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"requests/{split}/{seed}")
    requests: list[Request] = []
    seen: set[str] = set()
    for _ in range(50 * n + 1000):
        if len(requests) == n:
            return requests
        label = DOMAINS[len(requests) % len(DOMAINS)]
        template = rng.choice(TEMPLATES[label][split])
        text = rng.choice(OPENERS[split]) + _fill(template, split, rng) + rng.choice(CLOSERS[split])
        if text not in seen:
            seen.add(text)
            requests.append(Request(text, label, template))
    raise ValueError(f"cannot draw {n} distinct {split} requests")


# Written by hand for this set only: other registers, lengths and mistakes than any template above.
HANDWRITTEN: tuple[tuple[str, str], ...] = (
    ("my flask app returns 500 on every POST, logs say 'werkzeug BadRequestKeyError'", "code"),
    ("whats the fastest way to dedupe a huge text file line by line", "code"),
    ("pandas groupby then sum but keep the other columns?", "code"),
    ("I keep getting 'undefined is not a function' in the browser console", "code"),
    ("can u show me how recursion works with a fibonacci example in js", "code"),
    ("Is it better to use a dict or a list of tuples for a lookup table with 10k entries?", "code"),
    ("git says my branch diverged from origin, how do I get out of this mess", "code"),
    ("Write a bash one-liner that finds all .log files bigger than 1 GB", "code"),
    ("docker container exits immediately with code 0, what am I missing", "code"),
    ("how to make a REST endpoint in Express that accepts a file upload", "code"),
    ("regex to match a UK postcode?", "code"),
    ("What's the time complexity of inserting into a Python heap?", "code"),
    ("my C program prints garbage after the string, I think I forgot something with malloc", "code"),
    ("Convert this loop to a list comprehension: result = []; for w in words: if len(w) > 3: result.append(w)",
     "code"),
    ("Why does my React component re-render twice on mount?", "code"),
    ("SQL query to get the second highest salary from an employees table", "code"),
    ("How should I structure a Go project with several binaries?", "code"),
    ("explain async/await to me like I'm a junior dev", "code"),
    ("My unit tests pass locally but fail on CI with a timezone issue", "code"),
    ("write me a class for a bank account with deposit and withdraw methods", "code"),
    ("How do I profile a slow Python script?", "code"),
    ("segfault when I free the same pointer twice, why exactly?", "code"),
    ("Can you turn this JSON into a TypeScript interface? {\"id\": 1, \"tags\": [\"a\"]}", "code"),
    ("what does the yield keyword do", "code"),
    ("how do i center a div", "code"),
    ("Kotlin coroutines vs threads, which one for a network call?", "code"),
    ("generate a random password of 16 characters in python", "code"),
    ("npm install fails with EACCES permission denied", "code"),
    ("I want a script that renames all photos in a folder by their date", "code"),
    ("Is there a memory leak if I never close a file handle?", "code"),
    ("i have 3 boxes of 24 eggs and 5 broke. how many are left", "math"),
    ("17 times 23, no calculator pls", "math"),
    ("If I save 150 a month, how long until I have 2400?", "math"),
    ("what's 15 percent tip on a 64 dollar bill", "math"),
    ("Two trains leave stations 300 km apart at 60 and 90 km/h towards each other. When do they meet?", "math"),
    ("solve 2x - 7 = 11", "math"),
    ("Is 91 prime or not?", "math"),
    ("What is the sum of the angles in a hexagon?", "math"),
    ("my recipe is for 4 people and needs 300 g flour, how much for 6?", "math"),
    ("How many seconds are there in a week?", "math"),
    ("factor x^2 - 5x + 6", "math"),
    ("What's the average of 12, 15, 20 and 33?", "math"),
    ("a shirt costs 40 after a 20% discount, what was the original price", "math"),
    ("What is 7 factorial?", "math"),
    ("Find the hypotenuse of a right triangle with legs 6 and 8", "math"),
    ("how many ways can 5 people sit in a row", "math"),
    ("Compound interest: 1000 at 5% for 3 years, what do I end up with?", "math"),
    ("what is one third plus one quarter", "math"),
    ("The ratio of boys to girls is 3:5 and there are 40 students. How many girls?", "math"),
    ("Round 3.14159 to two decimal places", "math"),
    ("What's the volume of a cube with side 4 cm?", "math"),
    ("Is 0.1 + 0.2 exactly 0.3 in real arithmetic?", "math"),
    ("derivative of x cubed times e to the x", "math"),
    ("If a dozen roses cost 18, how much does one rose cost?", "math"),
    ("What is 2 to the power of 10?", "math"),
    ("I drove 420 km on 30 litres, what's my fuel use per 100 km", "math"),
    ("what's the median of 3, 9, 4, 11, 7", "math"),
    ("Find x if 3(x + 4) = 27", "math"),
    ("what is 1000 minus 387", "math"),
    ("How much is 12 squared minus 5 squared?", "math"),
    ("can you tidy up this paragraph for my newsletter, it reads clunky", "text"),
    ("Make this sound less rude: 'send me the report now'", "text"),
    ("I need a wedding toast for my sister, warm and a bit funny", "text"),
    ("write a limerick about a cat who hates mondays", "text"),
    ("Give me three headline options for a blog post about saving energy at home", "text"),
    ("shorten this to one tweet: We are thrilled to announce that our bakery opens a second shop downtown "
     "next Saturday with free pastries for everyone", "text"),
    ("How would you say 'thank you for your patience' in German?", "text"),
    ("Rewrite my LinkedIn summary so it sounds more confident", "text"),
    ("is it 'affect' or 'effect' in: the weather will ___ our plans", "text"),
    ("Write the opening line of a mystery novel set in Venice", "text"),
    ("summarise the plot of Romeo and Juliet in two sentences", "text"),
    ("Please correct my spelling: I recieved you're message yesturday", "text"),
    ("Draft a polite complaint letter about a late delivery", "text"),
    ("Write a short bedtime story about a brave little turtle", "text"),
    ("turn this into bullet points: the meeting covered budget, hiring, and the office move", "text"),
    ("What's a more vivid way to say 'the room was dark'?", "text"),
    ("Write a slogan for a bicycle repair shop", "text"),
    ("compose a thank-you note to my teacher", "text"),
    ("Can you write song lyrics about leaving home?", "text"),
    ("Make this paragraph more formal for a grant application: we really need the money to fix the roof", "text"),
    ("give me a catchy name for a podcast about gardening", "text"),
    ("Translate to Spanish: where is the train station?", "text"),
    ("write an out-of-office reply for the holidays", "text"),
    ("Describe a sunset over the sea in a few poetic lines", "text"),
    ("rephrase 'due to the fact that' more concisely", "text"),
    ("Write a two-sentence horror story", "text"),
    ("proofread: Their are many reason's to visit Lisbon", "text"),
    ("write a product blurb for handmade soap with lavender", "text"),
    ("Help me write a resignation letter that keeps things friendly", "text"),
    ("Could you write a short speech for a retirement party?", "text"),
    ("hey!! long time no see", "chat"),
    ("do you ever get tired of answering questions?", "chat"),
    ("I can't sleep, talk to me for a bit", "chat"),
    ("what's your favourite colour", "chat"),
    ("Tell me a fun fact", "chat"),
    ("I passed my driving test today!!!", "chat"),
    ("are you a robot or a person", "chat"),
    ("my dog died last week and I miss him", "chat"),
    ("What are you up to right now?", "chat"),
    ("good night, talk tomorrow", "chat"),
    ("Do you think pineapple belongs on pizza?", "chat"),
    ("I'm so bored at this airport", "chat"),
    ("lol that was funny", "chat"),
    ("Can we just chat for a while?", "chat"),
    ("what should I watch tonight, something light", "chat"),
    ("I think I'm in love with my best friend, what do I do", "chat"),
    ("Would you rather fly or be invisible?", "chat"),
    ("thank you so much, you really helped me today", "chat"),
    ("Monday again... ugh", "chat"),
    ("How old are you?", "chat"),
    ("Say something nice to me", "chat"),
    ("I just moved to a new city and don't know anyone", "chat"),
    ("what's the best thing that happened to you today", "chat"),
    ("Do you have any hobbies?", "chat"),
    ("guess what, I'm getting married!", "chat"),
    ("I'm nervous about my job interview tomorrow", "chat"),
    ("Are you smarter than me?", "chat"),
    ("morning! coffee first, then the world", "chat"),
    ("Tell me about yourself", "chat"),
    ("ok bye", "chat"),
)


def handwritten() -> list[Request]:
    """The hand-written second evaluation set as Requests."""
    return [Request(text, label, "handwritten") for text, label in HANDWRITTEN]
