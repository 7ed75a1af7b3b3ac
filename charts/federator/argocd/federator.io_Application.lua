-- Argo CD health check for federator.io/Application.
--
-- Installed as resource.customizations.health.federator.io_Application in argocd-cm (see
-- argocd-cm.yaml beside this file; docs/gitops.md). Argo CD runs it in gopher-lua, the Lua 5.1
-- dialect, with only the base, table and package libraries (and a safe os): no string or math
-- library, no string methods. Argo CD sets the global `obj` to the live resource and reads the
-- returned table: status (Healthy|Progressing|Degraded|Suspended|Missing|Unknown) and message.
--
-- It reads only what federator writes (DESIGN section 2, federator/core/health.py `aggregate`):
-- status.observedGeneration, status.phase, status.summary and the conditions Ready, Reconciling,
-- Stalled, Compiled and DelegatesAvailable.
--
-- Verdicts:
--   no status, no phase, or observedGeneration behind metadata.generation  -> Progressing
--   phase Healthy / Progressing / Suspended / Unknown                         -> the same
--   phase Degraded                                                            -> Degraded
--   phase Invalid (the spec does not compile)                                 -> Degraded
--   phase Missing, DelegatesAvailable=False (a delegate operator is absent)   -> Degraded
--   phase Missing otherwise (children not observed yet, being recreated)      -> Progressing
--   any other phase                                                           -> Unknown
-- Missing is never returned: Argo CD keeps it for "the live object does not exist", and this
-- Application does exist; what is missing are some of its children.

local function condition(status, kind)
  -- The last condition of that type wins, as federator and kubectl read them.
  local found = nil
  if type(status.conditions) == "table" then
    for _, item in ipairs(status.conditions) do
      if type(item) == "table" and item.type == kind then
        found = item
      end
    end
  end
  return found
end

local function message_of(item)
  if item ~= nil and type(item.message) == "string" and item.message ~= "" then
    return item.message
  end
  return nil
end

local function first_message(...)
  -- The message of the first given condition that has one (arguments may be nil).
  for i = 1, select("#", ...) do
    local text = message_of((select(i, ...)))
    if text ~= nil then
      return text
    end
  end
  return nil
end

local hs = {}
local status = obj.status
local metadata = obj.metadata
if type(metadata) ~= "table" then
  metadata = {}
end

if type(status) ~= "table" or type(status.phase) ~= "string" or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "waiting for federator to report a status"
  return hs
end

local observed = status.observedGeneration
local generation = metadata.generation
if type(observed) ~= "number" then
  hs.status = "Progressing"
  hs.message = "waiting for federator: status has no observedGeneration"
  return hs
end
if type(generation) == "number" and observed < generation then
  hs.status = "Progressing"
  hs.message = "waiting for federator: status describes generation " .. tostring(observed)
    .. ", spec is generation " .. tostring(generation)
  return hs
end

local phase = status.phase
local ready = condition(status, "Ready")
local fallback = "phase " .. phase
if type(status.summary) == "string" and status.summary ~= "" then
  fallback = fallback .. ", " .. status.summary .. " children healthy"
end

if phase == "Healthy" or phase == "Progressing" or phase == "Suspended" or phase == "Unknown" then
  hs.status = phase
  hs.message = first_message(ready) or fallback
elseif phase == "Degraded" then
  -- Stalled names the degraded children with their own errors; Ready only lists names.
  hs.status = "Degraded"
  hs.message = first_message(condition(status, "Stalled"), ready) or fallback
elseif phase == "Invalid" then
  -- Compiled=False carries every problem of the spec; nothing is applied until it is fixed.
  hs.status = "Degraded"
  hs.message = first_message(condition(status, "Compiled"), ready) or fallback
elseif phase == "Missing" then
  local delegates = condition(status, "DelegatesAvailable")
  if delegates ~= nil and delegates.status == "False" then
    -- A delegate operator (its CRD) is not installed: only a person can fix that.
    hs.status = "Degraded"
    hs.message = first_message(delegates, ready) or fallback
  else
    -- Children not observed yet, or deleted by hand: federator (re)creates them.
    hs.status = "Progressing"
    hs.message = first_message(condition(status, "Reconciling"), ready) or fallback
  end
else
  hs.status = "Unknown"
  hs.message = "unrecognised phase " .. phase
end
return hs
