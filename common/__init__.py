"""Pieces every server part shares and that belong to none of them (imports no part)."""
