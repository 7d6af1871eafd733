"""Stock levels for a small shop."""

from dataclasses import dataclass, field


@dataclass
class Inventory:
    """Items on the shelves, by name."""

    counts: dict = field(default_factory=dict)
    reorder_level: int = 5

    def add(self, name, count):
        if count <= 0:
            raise ValueError("count must be positive")
        self.counts[name] = self.counts.get(name, 0) + count
        return self.counts[name]

    def remove(self, name, count):
        available = self.counts.get(name, 0)
        if count > available:
            raise ValueError(f"only {available} {name} left")
        self.counts[name] = available + count
        return self.counts[name]

    def needs_reorder(self):
        return sorted(name for name, count in self.counts.items() if count < self.reorder_level)

    def total(self):
        return sum(self.counts.values())
