"""Development tools (golden files, grammar checks, the test-stack driver): not shipped in the wheel."""
