# 65-python-window-crash: a sampler window whose callback is Python survives its worker's
# SIGKILL: the restarted worker (a new interpreter) closes the window with every reading, on
# time. The assertions of 30-window-survives-crash.sh, with the Python example's
# sampler_processor.py (its output is byte for byte the C one's).
here=$(cd "$(dirname "$0")" && pwd)
IT_SAMPLE_MODULE=$(cd "$here/../../config/examples/python" && pwd)/sampler_processor.py \
    exec bash "$here/30-window-survives-crash.sh"
