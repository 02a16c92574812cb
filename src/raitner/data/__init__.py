"""Instruction data: negative type sampling and vanilla / RA-IT dataset building."""
