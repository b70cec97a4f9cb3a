"""The dashboard: sign-in sessions, pages, the data they show, server-drawn SVG charts, templates and CSS."""
