"""The visual designer: process drafts, their validation, diff and deploy (issue 5)."""
