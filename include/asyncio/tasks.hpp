// Mirrors Python's asyncio.tasks: Coro (coroutine objects), Task,
// create_task, sleep, current_task, all_tasks, gather, wait, wait_for,
// as_completed, shield.
#pragma once

#include "asyncio/events.hpp"
#include "asyncio/detail/combinators.hpp"
