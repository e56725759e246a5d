# mlmon event filter for Logstash's ruby filter (`ruby { path => ... }`).
#
# Validates one JSON line against the mlmon event contract, enriches it and sets
# its route; a line that fails becomes a dead letter carrying the original line
# and the reason. The rules come from mlmon_contract.json, generated from
# mlmon_logging/contract.py (python -m mlmon.ingest.spec --write); `mlmon ingest`
# implements the same rules in Python (jobs/ingest/validate.py) and both must
# produce logstash/tests/*.expected.json. Keep the two in step: same checks, same
# order, same messages.
#
# Input: the raw line in [message] (line codec). Output: the event rebuilt as the
# document to store, plus [@metadata][mlmon][index] (target index, without the month the output adds).
require "json"
require "date"
require "digest"

ISO_RE = /\A(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):(\d{2}))\z/
JSON_TYPE = { String => "string", Integer => "integer", Float => "float", TrueClass => "boolean",
              FalseClass => "boolean", Array => "array", Hash => "object", NilClass => "null" }.freeze
EXPECTED = { "keyword" => "a string", "text" => "a string", "double" => "a number", "long" => "an integer",
             "boolean" => "true or false", "date" => "an ISO 8601 timestamp string" }.freeze
TS_HINT = "2025-01-31T12:00:00.000Z"
MIN_SECONDS = -62135596800 # 0001-01-01T00:00:00Z
# A long is what Elasticsearch's long holds; anything wider would fail the bulk request later.
LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1
# orjson (mlmon ingest's parser) reads integers in [-2^63, 2^64) as integers and others as
# doubles, and refuses a number beyond the double range; Ruby's JSON keeps every integer
# exact and reads 1e400 as Infinity. as_orjson makes Ruby read numbers the same way.
ORJSON_INT_LIMIT = 2**64

class MlmonReject < StandardError
  attr_reader :error_type
  def initialize(error_type, message)
    super(message)
    @error_type = error_type
  end
end

def register(params)
  @spec = JSON.parse(File.read(params.fetch("contract_path")))
  ns = params["namespace"].to_s.empty? ? @spec["default_namespace"] : params["namespace"]
  @index_of_kind = {}
  @spec["datasets"].each { |ds, kind| @index_of_kind[kind] = "#{@spec['data_stream_type']}-#{ds}-#{ns}" }
  @dead_letter_index = "#{@spec['data_stream_type']}-#{@spec['dead_letter_dataset']}-#{ns}"
  @fields = @spec["fields"]
  @required = {}
  @spec["datasets"].each_value { |kind| @required[kind] = @fields.select { |_, f| f["required_in"].include?(kind) }.keys }
  # Ruby's ^ and $ match at line breaks; anchor on the whole string like Python's fullmatch.
  @name_re = Regexp.new("\\A(?:" + @spec["name_pattern"].sub(/\A\^/, "").sub(/\$\z/, "") + ")\\z")
  @datasets_text = @spec["datasets"].keys.join(", ")
  # The codec decoded the line's bytes with this charset; ISO-8859-1 is undone exactly.
  charset = params["input_charset"].to_s
  @input_encoding = charset.empty? ? nil : Encoding.find(charset)
  unless @input_encoding.nil? || @input_encoding == Encoding::ISO_8859_1 || @input_encoding == Encoding::UTF_8
    raise ArgumentError, "input_charset must be ISO-8859-1 (lossless) or UTF-8, got #{charset}"
  end
end

# Whitespace only, as Python's bytes.strip() sees it (mlmon ingest): String#strip would also
# take "\0" and raises on invalid UTF-8.
def blank?(raw)
  raw.b.count(" \t\n\r\v\f") == raw.bytesize
end

# The line's bytes as they arrived, before the codec decoded them.
def raw_bytes(message)
  return message unless @input_encoding == Encoding::ISO_8859_1
  message.encode(Encoding::ISO_8859_1).force_encoding(Encoding::UTF_8)
end

def filter(event)
  raw = raw_bytes(event.get("message").to_s)
  return [] if blank?(raw) # a blank line is not an event
  now = Time.now.utc
  now_s = now.to_i
  now_ns = (now.nsec / 1_000_000) * 1_000_000 # event.ingested has millisecond precision
  begin
    kind, flat, instants = accept(raw, now_s, now_ns)
    rebuild(event, flat, instants)
    event.set("[@metadata][mlmon][index]", @index_of_kind[kind])
  rescue MlmonReject => e
    ingested = iso(now_s, now_ns)
    original = original_text(raw)
    rebuild(event, {
      "@timestamp" => ingested,
      "event.id" => Digest::SHA256.hexdigest(original),
      "event.dataset" => @spec["dead_letter_dataset"],
      "event.ingested" => ingested,
      "event.original" => original,
      "error.type" => e.error_type,
      "error.message" => e.message,
    }, { "@timestamp" => [now_s, now_ns] }, keep: ["log"])
    event.set("[@metadata][mlmon][index]", @dead_letter_index)
  end
  [event]
end

def original_text(raw)
  bytes = raw.dup.force_encoding(Encoding::UTF_8)
  max = @spec["max_line_bytes"]
  return bytes.byteslice(0, max).scrub("") if bytes.bytesize > max
  bytes.scrub("\uFFFD")
end

def cut(text, limit = 200)
  text[0, limit]
end

def jtype(value)
  JSON_TYPE.fetch(value.class, "unknown")
end

def accept(raw, now_s, now_ns)
  line = raw.dup.force_encoding(Encoding::UTF_8)
  max = @spec["max_line_bytes"]
  if line.bytesize > max
    raise MlmonReject.new("oversized_line", "line of #{line.bytesize} bytes exceeds the limit of #{max} bytes")
  end
  raise MlmonReject.new("invalid_utf8", "line is not valid UTF-8") unless line.valid_encoding?
  begin
    obj = as_orjson(JSON.parse(line, max_nesting: @spec["max_nesting_depth"]))
  rescue JSON::NestingError  # a JSON::ParserError: rescued first
    raise MlmonReject.new("not_json", "line nests objects and arrays more than #{@spec["max_nesting_depth"]} levels deep")
  rescue JSON::ParserError
    raise MlmonReject.new("not_json", "line is not valid JSON")
  end
  raise MlmonReject.new("not_json_object", "line is JSON but not an object (got #{jtype(obj)})") unless obj.is_a?(Hash)
  flat = {}
  flatten(obj, "", flat)
  kind = kind_of(flat)
  version = flat["mlmon.schema_version"]
  if version.is_a?(String) && version != @spec["schema_version"]
    raise MlmonReject.new("unsupported_schema_version", "mlmon.schema_version '#{cut(version, 100)}' is not supported " \
                                                         "(this pipeline reads version #{@spec['schema_version']})")
  end
  instants = {}
  family_counts = Hash.new(0)
  flat.keys.each do |name|
    value = flat[name]
    rule = @fields[name]
    if rule.nil?
      check_family_field(kind, name, value, family_counts)
      next
    end
    unless rule["kinds"].include?(kind)
      raise MlmonReject.new("unknown_field", "field '#{cut(name)}' is not part of a #{kind} event in the contract")
    end
    if rule["derived"] # set below from trusted inputs only
      flat.delete(name)
      next
    end
    next if value.nil?
    instant = check_value(name, rule, value)
    if instant
      instants[name] = instant
      flat[name] = iso(*instant)
    end
  end
  @required[kind].each do |name|
    raise MlmonReject.new("missing_field", "required field '#{name}' is missing in this #{kind} event") if flat[name].nil?
  end
  expected_kind = @spec["ecs_event_kind"][kind]
  if flat["event.kind"] != expected_kind
    raise MlmonReject.new("invalid_value", "field 'event.kind' must be '#{expected_kind}' in a #{kind} event")
  end
  task_fields = @spec["task_required"][kind]
  if task_fields
    task = flat["mlmon.model.task"]
    task_fields[task].each do |name|
      raise MlmonReject.new("missing_field", "field '#{name}' is required in a #{task} #{kind} event") if flat[name].nil?
    end
  end
  ts_s, ts_ns = instants["@timestamp"]
  tolerance = @spec["future_tolerance_seconds"]
  if ([ts_s, ts_ns] <=> [now_s + tolerance, now_ns]) > 0
    raise MlmonReject.new("future_timestamp", "@timestamp is more than #{tolerance} s ahead of the ingest time")
  end
  flat["event.ingested"] = iso(now_s, now_ns)
  instants["event.ingested"] = [now_s, now_ns]
  latency = flat["mlmon.prediction.latency_ms"]
  unless latency.nil?
    flat["mlmon.prediction.latency_bucket"] =
      @spec["latency_bucket_labels"][@spec["latency_buckets_ms"].count { |bound| bound <= latency }]
  end
  [kind, flat, instants]
end

def as_orjson(value)
  case value
  when Hash
    value.each_pair { |key, v| value[key] = as_orjson(v) if v.is_a?(Hash) || v.is_a?(Array) || v.is_a?(Numeric) }
  when Array
    value.map! { |v| as_orjson(v) }
  when Integer
    value >= LONG_MIN && value < ORJSON_INT_LIMIT ? value : finite_double(value.to_f)
  when Float
    finite_double(value)
  else
    value
  end
end

def finite_double(value)
  raise JSON::ParserError, "number is infinity when parsed as double" if value.infinite?
  value
end

def flatten(obj, prefix, out)
  obj.each do |key, value|
    name = prefix + key
    if value.is_a?(Hash)
      flatten(value, name + ".", out)
    elsif out.key?(name)
      raise MlmonReject.new("duplicate_field", "field '#{cut(name)}' appears twice (nested and dotted)")
    else
      out[name] = value
    end
  end
end

def kind_of(flat)
  dataset = flat["event.dataset"]
  raise MlmonReject.new("missing_field", "required field 'event.dataset' is missing") if dataset.nil?
  unless dataset.is_a?(String)
    raise MlmonReject.new("wrong_type", "field 'event.dataset' must be a string, got #{jtype(dataset)}")
  end
  kind = @spec["datasets"][dataset]
  if kind.nil?
    raise MlmonReject.new("unknown_dataset", "event.dataset '#{cut(dataset, 100)}' is not one of #{@datasets_text}")
  end
  kind
end

def check_family_field(kind, name, value, counts)
  dot = name.rindex(".")
  prefix = dot ? name[0, dot] : ""
  short = dot ? name[(dot + 1)..] : name
  family = @spec["families"][prefix]
  if family.nil? || !family["kinds"].include?(kind)
    raise MlmonReject.new("unknown_field", "field '#{cut(name)}' is not part of a #{kind} event in the contract")
  end
  unless @name_re.match?(short)
    raise MlmonReject.new("invalid_field_name",
                          "field '#{cut(name)}': user-chosen names must match #{@spec['name_pattern']}")
  end
  counts[prefix] += 1
  if counts[prefix] > @spec["max_family_fields"]
    raise MlmonReject.new("too_many_fields", "more than #{@spec['max_family_fields']} fields under '#{prefix}.'")
  end
  check_scalar(name, family["type"], value) unless value.nil?
end

def check_value(name, rule, value)
  if rule["array"]
    unless value.is_a?(Array) && value.all? { |v| v.is_a?(String) }
      message = value.is_a?(Array) ? "field '#{name}' must be a list of strings" :
                                     "field '#{name}' must be a list of strings, got #{jtype(value)}"
      raise MlmonReject.new("wrong_type", message)
    end
    return nil
  end
  instant = check_scalar(name, rule["type"], value)
  if value == "" && @spec["non_empty_fields"].include?(name)
    raise MlmonReject.new("invalid_value", "field '#{name}' must not be empty")
  end
  allowed = rule["allowed"]
  if !allowed.empty? && !allowed.include?(value)
    raise MlmonReject.new("invalid_value", "field '#{name}' must be one of #{allowed.join(', ')}, got '#{cut(value, 100)}'")
  end
  bounds = rule["range"]
  if bounds
    lo = bounds["min"]
    hi = bounds["max"]
    ok = (bounds["min_inclusive"] ? value >= lo : value > lo) &&
         (hi.nil? || (bounds["max_inclusive"] ? value <= hi : value < hi))
    raise MlmonReject.new("invalid_value", "field '#{name}' must be #{bounds['text']}") unless ok
  end
  instant
end

def check_scalar(name, es_type, value)
  case es_type
  when "double"
    if value.is_a?(Float)
      raise MlmonReject.new("non_finite_number", "field '#{name}' must be a finite number") unless value.finite?
      return nil
    end
    return nil if value.is_a?(Integer)
    if value.is_a?(String) && @spec["non_finite_strings"].include?(value)
      raise MlmonReject.new("non_finite_number", "field '#{name}' must be a finite number, got the string '#{value}'")
    end
  when "keyword", "text"
    return nil if value.is_a?(String)
  when "long"
    if value.is_a?(Integer)
      return nil if value >= LONG_MIN && value <= LONG_MAX
      raise MlmonReject.new("invalid_value", "field '#{name}' must be a 64-bit integer (-2^63 to 2^63-1)")
    end
  when "date"
    if value.is_a?(String)
      instant = parse_iso(value)
      if instant.nil?
        raise MlmonReject.new("invalid_timestamp",
                              "field '#{name}' is not an ISO 8601 timestamp with a time zone (e.g. #{TS_HINT})")
      end
      return instant
    end
  when "boolean"
    return nil if value == true || value == false
  end
  raise MlmonReject.new("wrong_type", "field '#{name}' must be #{EXPECTED.fetch(es_type)}, got #{jtype(value)}")
end

# [seconds since epoch, nanoseconds] of an accepted timestamp, or nil.
def parse_iso(text)
  m = ISO_RE.match(text)
  return nil if m.nil?
  y, mo, d, h, mi, s = (1..6).map { |i| m[i].to_i }
  return nil if y < 1 || h > 23 || mi > 59 || s > 59 || !Date.valid_date?(y, mo, d)
  offset = 0
  if m[8].nil?
    oh = m[10].to_i
    om = m[11].to_i
    return nil if oh > 23 || om > 59
    offset = (oh * 3600 + om * 60) * (m[9] == "+" ? 1 : -1)
  end
  seconds = Time.utc(y, mo, d, h, mi, s).to_i - offset
  return nil if seconds < MIN_SECONDS || Time.at(seconds).utc.year > 9999
  [seconds, (m[7] || "").ljust(9, "0").to_i]
end

# Java's ISO_INSTANT, as Logstash writes a Timestamp: fraction in 0, 3, 6 or 9 digits.
def iso(seconds, nanos)
  frac = if nanos.zero? then ""
         elsif (nanos % 1_000_000).zero? then format(".%03d", nanos / 1_000_000)
         elsif (nanos % 1000).zero? then format(".%06d", nanos / 1000)
         else format(".%09d", nanos)
         end
  Time.at(seconds).utc.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
end

# Replace the event's fields by the document to store (nested from dotted names).
def rebuild(event, flat, instants, keep: [])
  event.to_hash.each_key do |key|
    event.remove(key) unless key == "@timestamp" || key == "@metadata" || keep.include?(key)
  end
  flat.each do |name, value|
    if name == "@timestamp"
      event.set("@timestamp", LogStash::Timestamp.parse_iso8601(iso(*instants["@timestamp"])))
    else
      event.set(name.split(".").map { |part| "[#{part}]" }.join, value)
    end
  end
end
