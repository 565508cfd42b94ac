-- A FAKE of Resolve's scripting objects as Lua scripts see them (tests only; run by lupa's
-- Lua 5.1, the language of Resolve's LuaJIT). The same calls and return shapes as the
-- Python fake (tests/fake_resolve/resolve.py, fusion.py), each after the Resolve scripting
-- README and the Fusion Scripting Guide: methods called with ':', tables indexed from 1,
-- comp tool lists and keyframe lists as tables, ClipProperty values as strings.
-- fake.build(spec) -> resolve; spec: the scene (media properties, offsets, speed, comp tools).

local fake = {}

local function class()
    local c = {}
    c.__index = c
    return c
end

local Input, Tool, Comp, Folder, Pool, Media, Item, Storage = class(), class(), class(), class(), class(), class(), class(), class()

-- Animation as in the Python fake (fusion.py, where the sources are cited): an input is
-- animated only through a modifier connected to it, a BezierSpline for a number, a path
-- (PolyPath, or XYPath) for a point; Input:GetKeyFrames() gives a spline's keys and nil
-- otherwise, so a path-animated Center's keys are found through GetConnectedOutput():GetTool()
-- and the path's inputs (a PolyPath's Displacement spline, an XYPath's X and Y splines).
-- spec.keys = {Center = {[t] = {x, y}}, Width = {[t] = w}}; spec.paths = {Center = "XYPath"}.
local Output, Modifier = class(), class()

local function sorted_keys(keys)
    local times = {}
    for t in pairs(keys) do times[#times + 1] = t end
    table.sort(times)
    return times
end

local function at(keys, t)  -- held outside the keys, linear between (tests read keys only)
    local times = sorted_keys(keys)
    if t <= times[1] then return keys[times[1]] end
    if t >= times[#times] then return keys[times[#times]] end
    for i = 2, #times do
        if t <= times[i] then
            local t0, t1 = times[i - 1], times[i]
            local a, b, f = keys[t0], keys[t1], (t - t0) / (t1 - t0)
            if type(a) == "table" then return {a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f} end
            return a + (b - a) * f
        end
    end
end

local function spline(keys)
    local m = setmetatable({regid = "BezierSpline", keys = keys, inputs = {}}, Modifier)
    return m
end

function Modifier:GetAttrs() return {TOOLS_Name = self.regid, TOOLS_RegID = self.regid} end
function Modifier:GetInputList() return self.inputs end
function Output:GetTool() return self.modifier end

function Input:GetKeyFrames()  -- a spline's key times, or nil when not animated with a spline
    local m = self.modifier
    if m == nil or m.regid ~= "BezierSpline" then return nil end
    return sorted_keys(m.keys)
end

function Input:GetConnectedOutput()
    if self.modifier == nil then return nil end
    return setmetatable({modifier = self.modifier}, Output)
end

local function path(regid, keys)
    -- a point's path: its inputs carry the keys (Displacement timing the locked points, or X and Y)
    local m = setmetatable({regid = regid, keys = keys, inputs = {}}, Modifier)
    local times = sorted_keys(keys)
    if regid == "XYPath" then
        local xs, ys = {}, {}
        for _, t in ipairs(times) do xs[t], ys[t] = keys[t][1], keys[t][2] end
        m.inputs = {setmetatable({modifier = spline(xs)}, Input), setmetatable({modifier = spline(ys)}, Input)}
    else
        local displacement = {}
        for i, t in ipairs(times) do displacement[t] = (#times > 1) and (i - 1) / (#times - 1) or 0 end
        m.inputs = {setmetatable({modifier = spline(displacement)}, Input), setmetatable({}, Input)}
    end
    return m
end

function Tool:GetAttrs() return {TOOLS_Name = self.name, TOOLS_RegID = self.regid, TOOLB_PassThrough = self.off} end

function Tool:SetAttrs(attrs) if attrs.TOOLS_Name then self.name = attrs.TOOLS_Name end return true end
function Tool:SetInput(id, value, t)  -- not animated: the one value, the time ignored (fusion.py)
    local inp = self[id]
    if inp == nil then return false end
    if inp.modifier then inp.modifier.keys[t or self.comp.CurrentTime] = value
    else self.values[id] = value end
    if self.comp.locked and self.comp.locked > 0 then self.unrendered = true end
    return true
end

function Tool:GetInput(id, t)
    local inp = self[id]
    local value = self.values[id]
    if inp and inp.modifier then value = at(inp.modifier.keys, t or self.comp.CurrentTime) end
    if type(value) == "table" then return {value[1], value[2], 0} end
    return value
end

local function tool(spec)
    local t = setmetatable({name = spec.name, regid = spec.regid, off = spec.off or false, values = spec.values}, Tool)
    for id, value in pairs(spec.values) do
        local keys = (spec.keys or {})[id]
        local modifier = nil
        if keys then
            if type(value) == "table" then modifier = path((spec.paths or {})[id] or "PolyPath", keys)
            else modifier = spline(keys) end
        end
        t[id] = setmetatable({modifier = modifier}, Input)
    end
    return t
end

function Comp:GetAttrs() return self.attrs end
function Comp:GetToolList(selected) return self.tools end
function Comp:GetData(name) return self.data[name] end  -- persistent comp data (Object Data)
function Comp:FindTool(name)
    for _, t in ipairs(self.tools) do if t.name == name then return t end end
    return nil
end
function Comp:Lock() self.locked = (self.locked or 0) + 1 end
function Comp:Unlock() self.locked = self.locked - 1 end
function Comp:AddTool(regid)  -- a Loader (the only tool samroto adds); nil for others
    if regid ~= "Loader" then return nil end
    local t = tool({name = "Loader" .. (#self.tools + 1), regid = "Loader",
                    values = {Clip = "", GlobalIn = 0, GlobalOut = 0}})
    t.comp = self
    self.tools[#self.tools + 1] = t
    return t
end

function Folder:GetName() return self.name end
function Folder:GetClipList() local c = {} for i, v in ipairs(self.clips) do c[i] = v end return c end
function Folder:GetSubFolderList() local c = {} for i, v in ipairs(self.subs) do c[i] = v end return c end

function Media:GetName() return self.props["Clip Name"] or "" end
function Media:GetClipProperty(key)
    if key == nil then return self.props end
    return self.props[key] or ""
end
function Media:SetClipProperty(key, value)
    if type(value) ~= "string" or self.read_only[key] then return false end
    self.props[key] = value
    return true
end

local function media(props, read_only)
    local ro = {["File Path"] = true, ["Clip Name"] = true, Frames = true, Resolution = true}
    for k in pairs(read_only or {}) do ro[k] = true end
    return setmetatable({props = props, read_only = ro, mattes = {}}, Media)
end

function Pool:GetRootFolder() return self.root end
function Pool:GetCurrentFolder() return self.current end
function Pool:SetCurrentFolder(f) self.current = f return true end
function Pool:AddSubFolder(parent, name)
    local f = setmetatable({name = name, clips = {}, subs = {}}, Folder)
    parent.subs[#parent.subs + 1] = f
    return f
end
function Pool:ImportMedia(infos)  -- [{FilePath (printf pattern), StartIndex, EndIndex}] -> items
    local made = {}
    for _, info in ipairs(infos) do
        local pattern, a, b = info.FilePath, info.StartIndex, info.EndIndex
        local width = tonumber(pattern:match("%%0(%d+)d")) or 1
        local range = string.format("[%0" .. width .. "d-%0" .. width .. "d]", a, b)
        local path = pattern:gsub("%%0%d+d", range)
        local name = path:match("([^/\\]+)$")
        local item = media({["Clip Name"] = name, ["File Path"] = path, ["Start TC"] = "00:00:00:00"}, self.read_only)
        self.current.clips[#self.current.clips + 1] = item
        made[#made + 1] = item
        self.imports[#self.imports + 1] = {bin = self.current.name, pattern = pattern, first = a, last = b}
    end
    return made
end
function Pool:DeleteClips(clips)
    local gone = {}
    for _, c in ipairs(clips) do gone[c] = true end
    local function walk(f)
        local keep = {}
        for _, c in ipairs(f.clips) do if not gone[c] then keep[#keep + 1] = c end end
        f.clips = keep
        for _, s in ipairs(f.subs) do walk(s) end
    end
    walk(self.root)
    return true
end
function Pool:GetClipMatteList(item) return item.mattes end
function Pool:DeleteClipMattes(item, paths)
    local gone, keep = {}, {}
    for _, p in ipairs(paths) do gone[p] = true end
    for _, p in ipairs(item.mattes) do if not gone[p] then keep[#keep + 1] = p end end
    item.mattes = keep
    return true
end

function Storage:AddClipMattesToMediaPool(item, paths)
    for _, p in ipairs(paths) do item.mattes[#item.mattes + 1] = p end
    return true
end

-- Offsets and durations as Resolve reports them (see TimelineItem in resolve.py): timeline
-- frames for GetDuration/GetLeftOffset/GetRightOffset, source frames for GetSource*Frame.
function Item:GetName() return self.spec.name end
function Item:GetStart() return self.spec.start or 86400 end
function Item:GetDuration() return math.floor(self.spec.duration / self.spec.speed) end
function Item:GetLeftOffset() return math.floor(self.spec.left / self.spec.speed) end
function Item:GetRightOffset() return math.floor(self.spec.right / self.spec.speed) end
function Item:GetSourceStartFrame() return self.spec.left end
function Item:GetSourceEndFrame() return self.spec.left + self.spec.duration - 1 end
function Item:GetMediaPoolItem() return self.media end
function Item:GetFusionCompCount() return self.comp and 1 or 0 end
function Item:GetFusionCompByIndex(i) if i == 1 then return self.comp end return nil end

function fake.build(spec)
    local total = spec.left + spec.duration + spec.right
    spec.speed = spec.speed or 1
    local tools = {}
    local comp = setmetatable({attrs = {COMPN_GlobalStart = 0, COMPN_GlobalEnd = total - 1,
                                        COMPN_RenderStart = spec.left, COMPN_RenderEnd = spec.left + spec.duration - 1},
                               CurrentTime = spec.current_time or spec.left, tools = tools,
                               data = {["samroto.finish"] = spec.finish}}, Comp)
    for i, t in ipairs(spec.tools or {}) do tools[i] = tool(t) tools[i].comp = comp end
    local item = setmetatable({spec = spec, media = media(spec.props), comp = comp}, Item)
    local root = setmetatable({name = "Master", clips = {}, subs = {}}, Folder)
    local pool = setmetatable({root = root, current = root, imports = {}, read_only = spec.read_only}, Pool)
    local storage = setmetatable({}, Storage)
    local timeline = {GetCurrentVideoItem = function() return item end,
                      SetCurrentTimecode = function(self, tc) self.timecode = tc return true end}
    local project = {GetCurrentTimeline = function() return timeline end, GetMediaPool = function() return pool end}
    local pm = {GetCurrentProject = function() return project end}
    return {GetProjectManager = function() return pm end, GetMediaStorage = function() return storage end,
            pool = pool, item = item, comp = comp, timeline = timeline}
end

return fake
