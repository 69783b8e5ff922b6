"""Identity generators (face swappers) and the classic obfuscations, one file each."""
