-- The terminal job states (model/states.ts TERMINAL_STATES: keep them in step).
local TERMINAL = {completed = true, failed = true, cancelled = true, expired = true}
local function is_terminal(state)
  return TERMINAL[state] == true
end
