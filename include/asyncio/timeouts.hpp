// Mirrors Python's asyncio.timeouts: Timeout, timeout(), timeout_at().
#pragma once

#include "asyncio/events.hpp"
#include "asyncio/detail/timeout_impl.hpp"
