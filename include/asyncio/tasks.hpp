// Mirrors Python's asyncio.tasks: Coro (coroutine objects), Task,
// create_task, sleep, current_task, all_tasks.
#pragma once

#include "asyncio/events.hpp"
