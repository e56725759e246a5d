# Runs logstash/ruby/mlmon_event.rb the way Logstash's ruby filter does (register
# once, filter per event), then the pipeline's fingerprint step, over one golden
# input file; prints the stored documents as JSON. A stand-in for the parts of
# the Logstash Event API the script uses, so `make test` checks the real script
# without a JVM. Usage:
#   ruby ruby_harness.rb SCRIPT CONTRACT INPUT.jsonl CODEC_CHARSET [INPUT_CHARSET]
# CODEC_CHARSET is the line codec's charset: each line is decoded the way Logstash's
# codec does it (LogStash::Util::Charset#convert, below) before the filter sees it.
require "json"
require "digest"

module LogStash
  class Timestamp
    def self.parse_iso8601(text)
      new(text)
    end

    def initialize(text)
      @text = text
    end

    def to_s
      @text
    end
  end

  # The subset of LogStash::Event used by the script: field references "[a][b]" or "name".
  class Event
    def initialize(fields)
      @data = fields
    end

    def get(ref)
      path(ref).reduce(@data) { |node, key| node.is_a?(Hash) ? node[key] : nil }
    end

    def set(ref, value)
      *head, last = path(ref)
      node = head.reduce(@data) { |n, key| n[key] ||= {} }
      node[last] = value
    end

    def remove(ref)
      *head, last = path(ref)
      node = head.reduce(@data) { |n, key| n.is_a?(Hash) ? n[key] : nil }
      node.delete(last) if node.is_a?(Hash)
    end

    def to_hash
      @data
    end

    private

    def path(ref)
      ref.start_with?("[") ? ref.scan(/\[([^\]]+)\]/).flatten : [ref]
    end
  end
end

# What Logstash's line codec hands on for one line of bytes (logstash-core's
# LogStash::Util::Charset#convert): another charset is transcoded to UTF-8, replacing
# what it cannot map; declared UTF-8, invalid bytes make the line its Ruby inspect().
def codec_convert(bytes, charset)
  data = bytes.dup.force_encoding(Encoding.find(charset))
  return data.encode(Encoding::UTF_8, invalid: :replace, undef: :replace) unless data.encoding == Encoding::UTF_8
  data.valid_encoding? ? data : data.inspect[1..-2]
end

script, contract, input, codec_charset, input_charset = ARGV
filter = Object.new
filter.instance_eval(File.read(script), script)
filter.register("contract_path" => contract, "namespace" => "default", "input_charset" => input_charset)

docs = []
seen = {}
lines = File.binread(input).split("\n", -1)
lines.pop if lines.last == ""
lines.each do |line|
  event = LogStash::Event.new("message" => codec_convert(line, codec_charset), "@timestamp" => LogStash::Timestamp.new("now"),
                              "@version" => "1", "host" => { "name" => "logstash-1" })
  filter.filter(event).each do |out|
    out.remove("@version") # the pipeline's mutate step
    meta = out.to_hash.delete("@metadata")
    id = Digest::SHA256.hexdigest(out.get("[event][id]")) # fingerprint { method => "SHA256" }
    key = [meta["mlmon"]["index"], id]
    next if seen[key] # op_type create: the first document with an _id stays
    seen[key] = true
    source = JSON.parse(JSON.generate(out.to_hash.merge("@timestamp" => out.get("@timestamp").to_s)))
    docs << { "index" => key[0], "id" => id, "source" => source }
  end
end
puts JSON.generate(docs)
