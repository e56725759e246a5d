# Runs logstash/ruby/mlmon_event.rb the way Logstash's ruby filter does (register
# once, filter per event), then the pipeline's fingerprint step, over one golden
# input file; prints the stored documents as JSON. A stand-in for the parts of
# the Logstash Event API the script uses, so `make test` checks the real script
# without a JVM. Usage: ruby ruby_harness.rb SCRIPT CONTRACT INPUT.jsonl
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

script, contract, input = ARGV
filter = Object.new
filter.instance_eval(File.read(script), script)
filter.register("contract_path" => contract, "namespace" => "default")

docs = []
seen = {}
lines = File.binread(input).split("\n", -1)
lines.pop if lines.last == ""
lines.each do |line|
  event = LogStash::Event.new("message" => line, "@timestamp" => LogStash::Timestamp.new("now"),
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
