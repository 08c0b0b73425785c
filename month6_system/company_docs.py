"""The demo's company documents, written on demand (no binary files in the repository): a two-page
travel policy (PDF) and an IT handbook (DOCX) of a fictional company, each fact on a known page or
under a known heading, so the demo and the tests can check the citations.

    paths = write_company_docs("runs/month6/docs")    # [.../travel_policy.pdf, .../it_handbook.docx]
"""

from __future__ import annotations

from pathlib import Path

COMPANY = "Aldermoor Systems"
TRAVEL = {  # page -> (heading, paragraphs)
    1: ("Booking travel", [
        "All business trips are booked through the travel desk at least 14 days before departure.",
        "Economy class is required for flights shorter than six hours; business class needs a director's approval.",
    ]),
    2: ("Hotels and meals", [
        "The hotel limit is 180 euros per night in Zurich and 140 euros per night in other cities.",
        "The daily meal allowance is 45 euros, and receipts are kept for every expense above 20 euros.",
    ]),
}
IT = {  # heading -> paragraphs
    "Passwords": ["Passwords have at least 14 characters and are changed every 180 days.",
                  "Never share a password, not even with the service desk."],
    "Lost devices": ["A lost laptop is reported to the service desk within 24 hours, at extension 4400."],
}


def write_company_docs(folder: str | Path) -> list[Path]:
    """Write travel_policy.pdf and it_handbook.docx into `folder` (overwritten: the same bytes' text each time)."""
    from docx import Document
    from fpdf import FPDF

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pdf = FPDF(format="A4")
    pdf.set_title(f"{COMPANY} travel policy")
    for _, (heading, paragraphs) in sorted(TRAVEL.items()):
        pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=14)
        pdf.multi_cell(0, 8, f"{COMPANY} travel policy: {heading}.")  # a sentence of its own
        pdf.set_font("Helvetica", size=11)
        for text in paragraphs:
            pdf.ln(3)
            pdf.multi_cell(0, 6, text)
    pdf_path = folder / "travel_policy.pdf"
    pdf.output(str(pdf_path))
    document = Document()
    document.add_heading(f"{COMPANY} IT handbook", level=1)
    for heading, paragraphs in IT.items():
        document.add_heading(heading, level=2)
        for text in paragraphs:
            document.add_paragraph(text)
    docx_path = folder / "it_handbook.docx"
    document.save(str(docx_path))
    return [pdf_path, docx_path]
