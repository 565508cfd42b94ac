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

function Input:GetKeyFrames()  -- table of key times, or nil when not animated
    local keys = {}
    for t in pairs(self.tool.keys[self.id] or {}) do keys[#keys + 1] = t end
    table.sort(keys)
    if #keys == 0 then return nil end
    return keys
end

function Input:GetConnectedOutput() return nil end

function Tool:GetAttrs() return {TOOLS_Name = self.name, TOOLS_RegID = self.regid, TOOLB_PassThrough = self.off} end

function Tool:GetInput(id, t)
    local keys = self.keys[id]
    local value = self.values[id]
    if keys and t ~= nil and keys[t] ~= nil then value = keys[t] end
    if type(value) == "table" then return {value[1], value[2], 0} end
    return value
end

local function tool(spec)
    local t = setmetatable({name = spec.name, regid = spec.regid, off = spec.off or false, values = spec.values,
                            keys = spec.keys or {}}, Tool)
    for id in pairs(spec.values) do t[id] = setmetatable({tool = t, id = id}, Input) end
    return t
end

function Comp:GetAttrs() return self.attrs end
function Comp:GetToolList(selected) return self.tools end

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
    for i, t in ipairs(spec.tools or {}) do tools[i] = tool(t) end
    local comp = setmetatable({attrs = {COMPN_GlobalStart = 0, COMPN_GlobalEnd = total - 1,
                                        COMPN_RenderStart = spec.left, COMPN_RenderEnd = spec.left + spec.duration - 1},
                               CurrentTime = spec.current_time or spec.left, tools = tools}, Comp)
    local item = setmetatable({spec = spec, media = media(spec.props), comp = comp}, Item)
    local root = setmetatable({name = "Master", clips = {}, subs = {}}, Folder)
    local pool = setmetatable({root = root, current = root, imports = {}, read_only = spec.read_only}, Pool)
    local storage = setmetatable({}, Storage)
    local timeline = {GetCurrentVideoItem = function() return item end}
    local project = {GetCurrentTimeline = function() return timeline end, GetMediaPool = function() return pool end}
    local pm = {GetCurrentProject = function() return project end}
    return {GetProjectManager = function() return pm end, GetMediaStorage = function() return storage end,
            pool = pool, item = item}
end

return fake
