// Mirrors Python's asyncio.futures: Future, the low-level result slot.
#pragma once

#include "asyncio/events.hpp"
