"""``python -m sitl.scenarios.yubei OUT_DIR [--seed N]``: write the synthetic district folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from sitl.scenarios.yubei.generate import NOTICE, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sitl.scenarios.yubei",
                                     description=f"Write the synthetic Yubei district folder. {NOTICE}")
    parser.add_argument("out_dir", type=Path, help="folder to write (created if missing)")
    parser.add_argument("--seed", type=int, default=7, help="terrain noise seed (default 7)")
    args = parser.parse_args(argv)
    out = generate(args.out_dir, seed=args.seed)
    print(f"wrote {out} ({NOTICE})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
