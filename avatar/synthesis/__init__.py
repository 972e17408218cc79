"""Synthesis: speech and video backends conditioned on a person's likeness, and output labels.

Every backend takes a ConsentGrant (avatar.synthesis.grant), never a user id, path or profile:
the grant is the only way to reach a person's enrolled voice or face, and it is re-checked on
every use, so a revoked or expired consent stops synthesis at the next step."""
