#!/usr/bin/env python3
"""Ansible inventory of every onestop service center, generated from the division data.

    ansible/inventory/generate.py --under 3701 --hub-url https://hub.example:8090 -o hosts.yml
    onestop ansible inventory --under 3701 ...          (the same, through the onestop CLI)
    ansible-playbook -i ansible/inventory/generate.py ...  (dynamic: ONESTOP_INVENTORY_UNDER=3701)

The code lives in ``onestop/cli/ansible.py``; this file only makes it runnable from a checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from onestop.cli.ansible import generate_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(generate_main())
