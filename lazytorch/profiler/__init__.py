"""torch.profiler: what a program spends its time on, kernel by kernel (see recorder.py)."""
from .events import EventList, FunctionEvent, FunctionEventAvg
from .recorder import (ProfilerAction, ProfilerActivity, at_exit, profile, record_function,
                       schedule)

__all__ = ["EventList", "FunctionEvent", "FunctionEventAvg", "ProfilerAction",
           "ProfilerActivity", "profile", "record_function", "schedule"]
