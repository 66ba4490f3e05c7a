"""Rendering: turn engine results into text, JSON and Markdown. Nothing here computes."""
