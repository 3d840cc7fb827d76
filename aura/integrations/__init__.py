"""Integrations with the agent ecosystem, one subpackage each, importable
only when its extra is installed (``pip install 'aura[NAME]'``). Each may
import any room of aura; nothing in aura imports them."""
