"""Authoring rules and playbooks like code: `cordon test` runs the fixtures beside them, `cordon new` writes a
commented skeleton with its fixture folder. Pure: replay in memory and planning only, no AWS call."""
