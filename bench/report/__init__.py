"""The HTML report's building blocks (bench/stages/report.py assembles the page): tables made
from result files, copies of the files the page shows, and the Jinja2 templates in
bench/report/templates/."""
