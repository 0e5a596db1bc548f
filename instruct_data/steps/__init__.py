"""The build's cross-row steps, each written once as a function over one partition plus a merge.

Both executors (instruct_data.executors) call these: the local executor over partitions on this
machine, Ray over blocks on a cluster. A step function takes the columns of one partition (numpy
arrays, plain lists) and returns plain values; it imports neither Ray nor an executor.
"""
