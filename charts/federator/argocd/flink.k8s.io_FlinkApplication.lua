-- Argo CD health check for Lyft's flink.k8s.io/FlinkApplication (flinkk8soperator), which Argo CD
-- does not ship.
--
-- Installed as resource.customizations.health.flink.k8s.io_FlinkApplication in argocd-cm (see
-- argocd-cm.yaml beside this file; docs/gitops.md). Lua 5.1 as Argo CD runs it (gopher-lua, base
-- and table libraries only: no string library, no string methods). Argo CD sets the global `obj`.
--
-- The same verdicts as federator's own adapter, federator/core/health.py `flink_application`
-- (DESIGN section 5), minus what Argo CD cannot see: federator also keeps a child Progressing
-- until status.deployHash changes after it applied a new spec.
--   no status                                                     -> Progressing
--   phase DeployFailed or RollingBackJob                          -> Degraded
--   status.failedDeployHash set                                   -> Degraded
--   job FAILED or FAILING, whatever the phase (even Running)      -> Degraded
--   phase Running, job RUNNING                                    -> Healthy
--   phase Running, job FINISHED or CANCELED (a streaming job)     -> Degraded
--   phase Running, job in any other state                         -> Progressing
--   the other phases of FlinkApplicationPhase (Updating, ...)     -> Progressing
--   an unrecognised phase                                         -> Unknown

local PROGRESSING_PHASES = {
  [""] = true,
  Updating = true,
  Rescaling = true,
  ClusterStarting = true,
  SubmittingJob = true,
  Savepointing = true,
  Cancelling = true,
  Deleting = true,
  Recovering = true,
  DualRunning = true,
}

local function text(value)
  if type(value) == "string" then
    return value
  end
  return ""
end

local hs = {}
local status = obj.status
if status == nil or (type(status) == "table" and next(status) == nil) then
  hs.status = "Progressing"
  hs.message = "waiting for the Lyft Flink operator"
  return hs
end
if type(status) ~= "table" then
  hs.status = "Unknown"
  hs.message = "status is not an object"
  return hs
end

local phase = status.phase
if phase == nil then
  phase = ""
end
if type(phase) ~= "string" then
  hs.status = "Unknown"
  hs.message = "status.phase is not a string"
  return hs
end
local shown_phase = phase
if shown_phase == "" then
  shown_phase = "New"
end

local job_state = nil
if type(status.jobStatus) == "table" then
  job_state = status.jobStatus.state
end
local deploy_hash = text(status.deployHash)
local failed_hash = text(status.failedDeployHash)

-- status.reason and status.lastSeenError.appError, whichever are set.
local err = text(status.reason)
if type(status.lastSeenError) == "table" then
  local app_error = text(status.lastSeenError.appError)
  if app_error ~= "" then
    if err ~= "" then
      err = err .. "; " .. app_error
    else
      err = app_error
    end
  end
end

local function with_error(message)
  if err ~= "" then
    return message .. ": " .. err
  end
  return message
end

if phase == "DeployFailed" or phase == "RollingBackJob" then
  hs.status = "Degraded"
  if err ~= "" then
    hs.message = err
  else
    hs.message = "the Lyft operator reports " .. phase
  end
  return hs
end

if failed_hash ~= "" then
  local message = "deploy " .. failed_hash .. " failed"
  if deploy_hash ~= "" then
    message = message .. "; running " .. deploy_hash
  end
  hs.status = "Degraded"
  hs.message = with_error(message)
  return hs
end

if job_state == "FAILED" or job_state == "FAILING" then
  hs.status = "Degraded"
  hs.message = with_error("the Flink job is " .. job_state .. " (phase " .. shown_phase .. ")")
  return hs
end

if phase == "Running" then
  if job_state == "FINISHED" or job_state == "CANCELED" then
    hs.status = "Degraded"
    hs.message = "the Flink job is " .. job_state .. "; a streaming job must not finish"
  elseif job_state == "RUNNING" then
    hs.status = "Healthy"
    hs.message = "job RUNNING"
  else
    local shown_job = "not reported"
    if type(job_state) == "string" and job_state ~= "" then
      shown_job = job_state
    end
    hs.status = "Progressing"
    hs.message = "phase Running, job " .. shown_job
  end
  return hs
end

if PROGRESSING_PHASES[phase] then
  hs.status = "Progressing"
  if err ~= "" then
    hs.message = err
  else
    hs.message = "phase " .. shown_phase
  end
  return hs
end

hs.status = "Unknown"
hs.message = "unrecognised FlinkApplication phase '" .. phase .. "'"
return hs
