-- Requests of bench/soak.sh's wrk runs. soak.sh puts before this file:
--   MODE               "mixed" (reads, searches, post writes, uploads) or "login"
--   COOKIE, TOKEN      a pre-login CSRF cookie header and its token (the login POST)
--   EMAILS, PASSWORD   the accounts logins go round-robin over (one password)
--   WRITERS            { {cookie, token}, ... }: logged-in authors' cookie headers and
--                      CSRF tokens (post writes and uploads)
--   READS, SEARCHES    paths the mixed run reads, and search paths
--   IMAGES             paths of the PNG files uploads send
--   POST_RATE, UPLOAD_RATE  new posts and uploads a second, for each thread
--   ACK                path prefix of this run's files: each thread appends one line per
--                      acknowledged write ("post SLUG", "media ID") and per answer that
--                      is not 2xx/3xx ("status CODE"), flushed at once
-- Mixed: new posts and uploads at a steady rate whatever the throughput (each thread
-- writes at the start of every second until it has made its share), and otherwise 91%
-- reads and 9% searches.

local function urlencode(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local FORM = "application/x-www-form-urlencoded"
local BOUNDARY = "quire-soak-7d2f9c"
local n, logins = 0, 0
local started, posts_made, uploads_made = 0, 0, 0
local ack
local images = {}
local body_md = urlencode(string.rep("A written garden paragraph with some words in it. ", 20))

threads_made = 0
function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end

function init(args)
  math.randomseed(os.time() + (tid or 0) * 7919)
  started = os.time()
  -- The threads start apart, so that no account has many logins in flight at once.
  logins = (tid or 0) * math.floor(#EMAILS / 2)
  ack = assert(io.open(ACK .. "-" .. (tid or 0), "a"))
  for i, path in ipairs(IMAGES) do
    local f = assert(io.open(path, "rb"))
    images[i] = f:read("*a")
    f:close()
  end
end

local function login()
  logins = logins + 1
  local email = EMAILS[(logins % #EMAILS) + 1]
  local body = "email=" .. urlencode(email) .. "&password=" .. urlencode(PASSWORD)
    .. "&csrf_token=" .. urlencode(TOKEN)
  return wrk.format("POST", "/login", { ["Cookie"] = COOKIE, ["Content-Type"] = FORM }, body)
end

local function writer()
  return WRITERS[(n % #WRITERS) + 1]
end

local function write()
  local w = writer()
  -- The title makes the slug; thread, count and a random number keep it unique.
  local title = "Soak post " .. (tid or 0) .. " " .. n .. " " .. math.random(1, 1000000000)
  local body = "title=" .. urlencode(title) .. "&body=" .. body_md
    .. "&tags=soak%2C+garden&publish=true&csrf_token=" .. urlencode(w[2])
  return wrk.format("POST", "/posts", { ["Cookie"] = w[1], ["Content-Type"] = FORM }, body)
end

local function upload()
  local w = writer()
  local image = images[(n % #images) + 1]
  local body = "--" .. BOUNDARY .. "\r\n"
    .. "Content-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" .. w[2] .. "\r\n"
    .. "--" .. BOUNDARY .. "\r\n"
    .. "Content-Disposition: form-data; name=\"file\"; filename=\"soak-" .. (tid or 0) .. "-" .. n .. ".png\"\r\n"
    .. "Content-Type: image/png\r\n\r\n" .. image .. "\r\n"
    .. "--" .. BOUNDARY .. "--\r\n"
  -- From the post form (?to=new): the answer is that form with the image's Markdown
  -- added, which names the upload's id.
  return wrk.format("POST", "/media?to=new", {
    ["Cookie"] = w[1],
    ["Content-Type"] = "multipart/form-data; boundary=" .. BOUNDARY,
  }, body)
end

if MODE == "login" then
  request = login
else
  request = function()
    n = n + 1
    local due = os.time() - started + 1
    if posts_made < due * POST_RATE then
      posts_made = posts_made + 1
      return write()
    elseif uploads_made < due * UPLOAD_RATE then
      uploads_made = uploads_made + 1
      return upload()
    elseif math.random(1, 100) <= 91 then
      return wrk.format("GET", READS[(n % #READS) + 1])
    else
      return wrk.format("GET", SEARCHES[(n % #SEARCHES) + 1])
    end
  end
end

function response(status, headers, body)
  if status >= 400 then
    ack:write("status ", status, "\n")
    ack:flush()
    return
  end
  if status == 303 then
    local location = headers["location"] or headers["Location"] or ""
    local slug = location:match("^/posts/([%w%-]+)$")
    if slug then
      ack:write("post ", slug, "\n")
      ack:flush()
    end
  elseif status == 200 and body and MODE ~= "login" then
    -- The page escapes '/' as &#x2F; in the Markdown it shows.
    local id = body:match("%]%(/media/(%d+)/[^%)]+%)")
      or body:match("%]%(&#x2F;media&#x2F;(%d+)&#x2F;[^%)]+%)")
    if id then
      ack:write("media ", id, "\n")
      ack:flush()
    end
  end
end
