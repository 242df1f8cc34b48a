import sys
from pathlib import Path

# The repository's scripts (k8s_tools, image_requirements) are imported by these tests.
sys.path.insert(0, str(Path(__file__).parents[2] / "scripts"))
