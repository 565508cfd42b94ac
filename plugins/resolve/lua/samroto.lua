-- samroto for DaVinci Resolve, the Lua scripts (free Resolve 21.1 and later lists Lua
-- scripts only under Workspace > Scripts; they work in every edition and version).
--
-- What only Resolve knows is read here with the same API calls the Python scripts make
-- (Resolve scripting README; Fusion Scripting Guide): the clip under the playhead, its
-- offsets, source frames and clip properties, and the prompt tools of its Fusion comp
-- with their keyframes. That snapshot goes to samroto's Python
-- (`python -m samroto_resolve.replay`), which plans and tracks exactly what the Python
-- scripts would, on the samroto bridge; its progress is copied to the Console. The
-- mattes are then imported into the Media Pool here. Resolve waits while it tracks
-- (Lua scripts cannot run work in the background in Resolve).
--
-- Written for Lua 5.1 (Resolve's LuaJIT). Loaded by the menu scripts with dofile().

local samroto = {}

local function is_array(t)
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    for i = 1, n do if t[i] == nil then return false end end
    return n > 0
end

function samroto.json(value)
    local kind = type(value)
    if value == nil then return "null" end
    if kind == "boolean" then return value and "true" or "false" end
    if kind == "number" then
        if value ~= value or value == math.huge or value == -math.huge then return "null" end
        return string.format("%.17g", value)
    end
    if kind == "string" then
        return '"' .. value:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
    end
    if kind == "table" then
        local parts = {}
        if is_array(value) then
            for _, v in ipairs(value) do parts[#parts + 1] = samroto.json(v) end
            return "[" .. table.concat(parts, ",") .. "]"
        end
        for k, v in pairs(value) do parts[#parts + 1] = samroto.json(tostring(k)) .. ":" .. samroto.json(v) end
        return "{" .. table.concat(parts, ",") .. "}"
    end
    return "null"
end

local function list(t)  -- a Lua table (keys 1..n) as a sorted list of its values
    local out = {}
    if type(t) ~= "table" then return out end
    for _, v in pairs(t) do out[#out + 1] = v end
    return out
end

local function call(obj, name)  -- obj:name(), nil where this Resolve has no such call
    local ok, value = pcall(function() return obj[name](obj) end)
    if ok then return value end
    return nil
end

local function call_with(obj, name, arg)  -- obj:name(arg), nil where it fails or is missing
    local ok, value = pcall(function() return obj[name](obj, arg) end)
    if ok then return value end
    return nil
end

local function key_times(tool, id)
    -- Fusion animates an input through a modifier connected to it: a number through a
    -- BezierSpline (its keys are the input's GetKeyFrames), a point through a path, whose
    -- keys are those of its own animated inputs (a Polyline path's Displacement, an XY
    -- path's X and Y). Nothing connected: not animated (prompts.py keyframe_times, the same rule).
    local inp = tool[id]
    if inp == nil then return {} end
    local times = {}
    local output = call(inp, "GetConnectedOutput")
    local modifier = output and call(output, "GetTool")
    local regid = modifier and (modifier:GetAttrs().TOOLS_RegID or "") or ""
    if modifier and not regid:find("Spline") then
        for _, sub in pairs(modifier:GetInputList() or {}) do
            for _, t in pairs(sub:GetKeyFrames() or {}) do times[#times + 1] = t end
        end
    else
        times = list(inp:GetKeyFrames())
    end
    local seen, unique = {}, {}
    for _, t in ipairs(times) do
        if not seen[t] then seen[t] = true unique[#unique + 1] = t end
    end
    table.sort(unique)
    return unique
end

local function value_of(v)
    if type(v) == "table" then return {v[1], v[2]} end
    return v
end

-- The snapshot replay.py reads: what samroto_resolve asks Resolve, answered now.
function samroto.snapshot(resolve, direction, settings)
    local project = resolve:GetProjectManager():GetCurrentProject()
    assert(project, "No project is open in Resolve.")
    local timeline = project:GetCurrentTimeline()
    assert(timeline, "No timeline is open: open one and put the playhead over a clip.")
    local item = timeline:GetCurrentVideoItem()
    assert(item, "No video clip under the playhead: move the playhead over the clip to matte.")
    local media = item:GetMediaPoolItem()
    local snap = {direction = direction, settings = settings or {}, item = {
        name = item:GetName(), duration = item:GetDuration(), left = item:GetLeftOffset(),
        right = item:GetRightOffset(), start = call(item, "GetStart"), source_start = call(item, "GetSourceStartFrame"),
        source_end = call(item, "GetSourceEndFrame")}}
    snap.media = media and media:GetClipProperty() or nil
    if item:GetFusionCompCount() >= 1 then
        local comp = item:GetFusionCompByIndex(1)
        local tools = {}
        for _, tool in pairs(comp:GetToolList(false) or {}) do
            local attrs = tool:GetAttrs()
            local name = attrs.TOOLS_Name or ""
            if name:match("^samroto_") then
                local data = {name = name, regid = attrs.TOOLS_RegID, passthrough = attrs.TOOLB_PassThrough and true or false,
                              inputs = {}}
                -- Clip and GlobalIn: a mask Loader samroto_<object>_mask (its matte, its frame).
                -- Every input's value at every key time of the tool (a box keyed on Center
                -- reads its Width there too) and at the current time.
                local ids, keys, at = {}, {}, {comp.CurrentTime}
                for _, id in ipairs({"Center", "Width", "Height", "Clip", "GlobalIn"}) do
                    if tool[id] ~= nil then
                        ids[#ids + 1] = id
                        keys[id] = key_times(tool, id)
                        for _, t in ipairs(keys[id]) do at[#at + 1] = t end
                    end
                end
                for _, id in ipairs(ids) do
                    local values = {}
                    for _, t in ipairs(at) do values[string.format("%g", t)] = value_of(tool:GetInput(id, t)) end
                    data.inputs[id] = {keys = keys[id], values = values, value = value_of(tool:GetInput(id))}
                end
                tools[#tools + 1] = data
            end
        end
        snap.comp = {attrs = comp:GetAttrs(), current_time = comp.CurrentTime, tools = tools,
                     finish = call_with(comp, "GetData", "samroto.finish")}
    end
    return snap
end

local function write(path, text)
    local fh = assert(io.open(path, "w"))
    fh:write(text)
    fh:close()
end

local function quote(arg)
    if package.config:sub(1, 1) == "\\" then return '"' .. arg:gsub('"', '\\"') .. '"' end
    return "'" .. arg:gsub("'", "'\\''") .. "'"
end

local function bin(pool, names)  -- root/names[1]/names[2]..., created where missing
    local folder = pool:GetRootFolder()
    for _, name in ipairs(names) do
        local found = nil
        for _, sub in pairs(folder:GetSubFolderList() or {}) do
            if sub:GetName() == name then found = sub end
        end
        found = found or pool:AddSubFolder(folder, name)
        assert(found, "Resolve could not create the Media Pool bin " .. name)
        folder = found
    end
    return folder
end

local function same_sequence(clip, imp)  -- File Path "<prefix>[a-b]<suffix>" of this sequence
    local path = clip:GetClipProperty("File Path") or ""
    if #path <= #imp.prefix + #imp.suffix then return false end
    if path:sub(1, #imp.prefix) ~= imp.prefix or path:sub(-#imp.suffix) ~= imp.suffix then return false end
    return path:sub(#imp.prefix + 1, -#imp.suffix - 1):match("^%[%d+%-%d+%]$") ~= nil
end

-- Import what replay.py reports (the same steps as samroto_resolve/media.py).
function samroto.import(resolve, result, out)
    local project = resolve:GetProjectManager():GetCurrentProject()
    local pool = project:GetMediaPool()
    local source = project:GetCurrentTimeline():GetCurrentVideoItem():GetMediaPoolItem()
    local stem = (result.bin or "clip"):gsub("%.[^.]*$", ""):gsub("[^%w._-]+", "_")
    local folder = bin(pool, {"samroto mattes", stem})
    local previous = pool:GetCurrentFolder()
    pool:SetCurrentFolder(folder)
    local imported = 0
    for _, imp in ipairs(result.imports or {}) do
        local old = {}
        for _, clip in pairs(folder:GetClipList() or {}) do
            if same_sequence(clip, imp) then old[#old + 1] = clip end
        end
        if #old > 0 and not pool:DeleteClips(old) then out("samroto: Resolve kept the earlier import of " .. imp.pattern) end
        local items = pool:ImportMedia({{FilePath = imp.pattern, StartIndex = imp.first, EndIndex = imp.last}})
        local item = items and items[1]
        if not item then
            out(string.format("samroto: Resolve could not import the matte sequence %s (frames %d-%d).",
                              imp.pattern, imp.first, imp.last))
        else
            imported = imported + 1
            if not item:SetClipProperty("Start TC", imp.tc) then
                out(string.format("samroto: Resolve refused the Start TC %s for %s: line it up with the clip by hand " ..
                                  "(its first frame is source frame %d).", imp.tc, item:GetName(), imp.first))
            end
            if result.attach_clip_matte and source then
                local stale = {}
                local prefix = imp.first_file:match("([^/\\]+)$"):gsub("%.[^.]*%.[^.]*$", "")
                for _, p in pairs(pool:GetClipMatteList(source) or {}) do
                    if p:match("([^/\\]+)$"):gsub("%.[^.]*%.[^.]*$", "") == prefix then stale[#stale + 1] = p end
                end
                if #stale > 0 then pool:DeleteClipMattes(source, stale) end
                resolve:GetMediaStorage():AddClipMattesToMediaPool(source, {imp.first_file})
            end
        end
    end
    if previous then pool:SetCurrentFolder(previous) end
    return imported
end

-- Set what samroto's Python placed in the snapshot's comp (preview, mask and matte Loaders)
-- and move the playheads where it asked (the same steps as samroto_resolve/media.py).
function samroto.apply(resolve, result, out)
    local item = resolve:GetProjectManager():GetCurrentProject():GetCurrentTimeline():GetCurrentVideoItem()
    local comp = item:GetFusionCompByIndex(1)
    for _, loader in ipairs(result.loaders or {}) do
        local tool = comp:FindTool(loader.name)
        if tool == nil then
            comp:Lock()  -- only around AddTool: no file dialog for the new Loader
            tool = comp:AddTool("Loader", -32768, -32768)
            comp:Unlock()
            if tool == nil then out("samroto: Fusion could not add a Loader to the comp.") return end
            tool:SetAttrs({TOOLS_Name = loader.name})
        end
        -- inputs set outside Lock: set inside, they read back but are reported not to render
        tool:SetInput("Clip", loader.clip)
        if loader.global_in then tool:SetInput("GlobalIn", loader.global_in) end
        if loader.global_out then tool:SetInput("GlobalOut", loader.global_out) end
    end
    if result.current_time then comp.CurrentTime = result.current_time end
    if result.timecode then resolve:GetProjectManager():GetCurrentProject():GetCurrentTimeline():SetCurrentTimecode(result.timecode) end
end

-- Workspace > Scripts > samroto (Lua) > Track ...: blocks until done, progress in the Console.
-- ``direction``: forward, backward or both; or one of replay.py's ACTIONS (preview,
-- candidate1..3, review, next_tracked, previous_tracked, next_lost).
function samroto.track(resolve, direction, opts)
    local out = opts.out or print
    local ok, snap = pcall(samroto.snapshot, resolve, direction, opts.settings)
    if not ok then out("samroto: " .. tostring(snap)) return nil end
    local python = os.getenv("SAMROTO_PYTHON") or opts.python
    if python == nil or python == "" then
        out("samroto: samroto's Python is unknown: reinstall with `samroto install resolve`, or set SAMROTO_PYTHON")
        return nil
    end
    local tmp = os.getenv("TMPDIR") or os.getenv("TEMP") or "/tmp"
    local base = string.format("%s/samroto-resolve-%d", tmp, os.time())
    write(base .. ".json", samroto.json(snap))
    local sep = package.config:sub(1, 1) == "\\" and ";" or ":"
    local cmd
    if sep == ";" then
        cmd = string.format('set "PYTHONPATH=%s" && %s -m samroto_resolve.replay %s %s', opts.support,
                            quote(python), quote(base .. ".json"), quote(base .. ".lua"))
    else
        cmd = string.format("PYTHONPATH=%s %s -m samroto_resolve.replay %s %s", quote(opts.support),
                            quote(python), quote(base .. ".json"), quote(base .. ".lua"))
    end
    local opened, pipe = pcall(io.popen, cmd .. " 2>&1", "r")
    if opened and pipe then  -- progress as it comes
        for line in pipe:lines() do out(line) end
        pipe:close()
    else  -- a Lua built without popen: run it, then show what it printed
        os.execute(cmd .. " > " .. quote(base .. ".log") .. " 2>&1")
        local fh = io.open(base .. ".log", "r")
        if fh then
            for line in fh:lines() do out(line) end
            fh:close()
        end
        os.remove(base .. ".log")
    end
    local loaded, result = pcall(dofile, base .. ".lua")
    os.remove(base .. ".json")
    os.remove(base .. ".lua")
    if not loaded or type(result) ~= "table" then
        out("samroto: tracking did not finish (see the lines above)")
        return nil
    end
    if result.ok and result.loaders then samroto.apply(resolve, result, out) end
    if result.ok and #(result.imports or {}) > 0 then
        local n = samroto.import(resolve, result, out)
        out(string.format("samroto: imported %d matte(s) into the Media Pool bin 'samroto mattes'.", n))
    end
    return result
end

return samroto
