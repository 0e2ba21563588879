"""Synthetic Yubei district (Chongqing): 合成数据，仅供演示与测试 / synthetic, not survey.

``generate(out_dir, seed=7)`` writes a district folder (docs/district-folder.md);
``python -m sitl.scenarios.yubei OUT_DIR`` does the same from the shell.
"""

from sitl.scenarios.yubei.generate import NOTICE, generate

__all__ = ["NOTICE", "generate"]
