// Mirrors Python's asyncio.events: EventLoop, Handle, TimerHandle,
// get_running_loop(), new_event_loop().
#pragma once

#include "asyncio/detail/loop.hpp"
#include "asyncio/detail/future_impl.hpp"
#include "asyncio/detail/task_impl.hpp"

#include "asyncio/threads.hpp"  // run_in_executor, a member declared above, is defined there
