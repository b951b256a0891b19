"""`--format github`: GitHub Actions workflow commands, one annotation line per result.

Each finding becomes `::warning file=PATH,title=CODE rule::message` and each policy violation
`::error file=PATH,title=POLICY [CODE] [(node)]::message`. Escaping follows @actions/core (toolkit
`packages/core/src/command.ts`): in the message `%`, `\\r`, `\\n` become `%25`, `%0D`, `%0A`; in a
property value `:` and `,` also become `%3A`, `%2C`. So every annotation is exactly one line.
A model file has no line numbers, so annotations are file-level.
"""

from __future__ import annotations

from analyzer.core.results import Report
from analyzer.report.reporters import add_reporter


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, properties: dict[str, str], message: str) -> str:
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{kind} {props}::{escape_data(message)}"


@add_reporter("github", "GitHub Actions annotations (workflow commands)")
def render_github(report: Report) -> str:
    lines = [
        command(
            "warning",
            {"file": report.path, "title": f"{finding.code} {finding.rule}"},
            finding.message,
        )
        for finding in report.findings
    ]
    for violation in report.violations:
        title = " ".join(part for part in (violation.policy, violation.code) if part)
        if violation.node:
            title += f" ({violation.node})"
        lines.append(command("error", {"file": report.path, "title": title}, violation.message))
    return "".join(line + "\n" for line in lines)
