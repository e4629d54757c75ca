# 60-python-example: config/examples/python/config.yaml, the Python framework's example with its
# four callbacks in Python, through the whole pipeline: the same assertions as the C example
# (20-example-end-to-end.sh: alerts, humidity classes, sampler windows on broker 2, clean
# stop), since the Python callbacks emit byte for byte what the C ones do.
here=$(cd "$(dirname "$0")" && pwd)
IT_EXAMPLE_CONF=$(cd "$here/../../config/examples/python" && pwd)/config.yaml \
    exec bash "$here/20-example-end-to-end.sh"
