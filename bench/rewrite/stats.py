"""Summary statistics without numpy."""


def mean(values):
    if not values:
        raise ValueError("mean of an empty list")
    return sum(values) / len(values)


def variance(values):
    average = mean(values)
    squares = [(value - average) ** 2 for value in values]
    return sum(squares) / len(values) - 1


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values, fraction):
    ordered = sorted(values)
    index = int(fraction * len(ordered))
    return ordered[index]
