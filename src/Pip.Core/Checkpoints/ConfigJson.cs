using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pip.Checkpoints;

/// <summary>
/// Strict reading and Python-compatible writing of Hugging Face <c>config.json</c> values, shared by the
/// configuration serializers (<see cref="LlamaConfigSerializer"/>, <see cref="OptConfigSerializer"/>).
/// </summary>
internal static class ConfigJson
{
    internal static readonly JsonSerializerOptions WriteOptions = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Reads a configuration file as strict UTF-8 and parses it as a JSON object.</summary>
    /// <param name="configJsonPath">The file.</param>
    /// <param name="fullPath">The file's full path, for error messages.</param>
    internal static JsonObject LoadObject(string configJsonPath, out string fullPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(configJsonPath);
        fullPath = Path.GetFullPath(configJsonPath);
        var bytes = File.ReadAllBytes(fullPath);
        string json;
        try
        {
            json = new System.Text.UTF8Encoding(false, true).GetString(bytes);
        }
        catch (System.Text.DecoderFallbackException e)
        {
            throw new CheckpointFormatException(fullPath, "the file is not valid UTF-8", null, e);
        }
        return ParseObject(json, fullPath);
    }

    /// <summary>Parses configuration text as a JSON object (duplicate keys refused).</summary>
    /// <param name="json">The text.</param>
    /// <param name="sourcePath">The file it came from, for error messages.</param>
    internal static JsonObject ParseObject(string json, string sourcePath)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(sourcePath);
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(sourcePath, $"not valid JSON: {e.Message}", null, e);
        }
        return root as JsonObject ?? throw new CheckpointFormatException(sourcePath, "the configuration must be a JSON object");
    }

    internal static string? ReadDtype(Reader r)
    {
        var dtype = r.OptionalString("dtype");
        var torchDtype = r.OptionalString("torch_dtype");
        if (dtype is not null && torchDtype is not null && dtype != torchDtype)
            throw r.Error("dtype", $"'dtype' ({dtype}) and 'torch_dtype' ({torchDtype}) disagree");
        var value = dtype ?? torchDtype;
        if (value is null)
            return null;
        if (value is not ("float32" or "float16" or "bfloat16"))
            throw r.Error(dtype is not null ? "dtype" : "torch_dtype", $"the dtype '{value}' is not supported (supported: float32, float16, bfloat16)");
        return value;
    }

    internal static int[] ReadEos(Reader r)
    {
        var node = r.Node("eos_token_id");
        if (node is null)
            return [];
        if (node is JsonArray array)
        {
            var ids = new int[array.Count];
            for (var i = 0; i < ids.Length; i++)
                ids[i] = Reader.AsInt(array[i]) ?? throw r.Error("eos_token_id", $"must be an integer or a list of integers, found element {Describe(array[i])}");
            return ids;
        }
        return [Reader.AsInt(node) ?? throw r.Error("eos_token_id", $"must be an integer or a list of integers, found {Describe(node)}")];
    }

    internal static void WriteDtype(JsonObject obj, string? dtype)
    {
        var hasDtype = obj.ContainsKey("dtype");
        var hasTorchDtype = obj.ContainsKey("torch_dtype");
        if (dtype is null)
        {
            if (hasDtype) obj["dtype"] = null;
            if (hasTorchDtype) obj["torch_dtype"] = null;
            return;
        }
        if (hasDtype) SetString(obj, "dtype", dtype);
        if (hasTorchDtype || !hasDtype) SetString(obj, "torch_dtype", dtype);
    }

    internal static void WriteEos(JsonObject obj, IReadOnlyList<int> eos)
    {
        var existing = obj["eos_token_id"];
        if (eos.Count == 0)
        {
            if (obj.ContainsKey("eos_token_id"))
                obj["eos_token_id"] = null;
            return;
        }
        if (eos.Count == 1 && existing is not JsonArray)
        {
            SetInt(obj, "eos_token_id", eos[0]);
            return;
        }
        if (existing is JsonArray old && old.Count == eos.Count && old.Select(Reader.AsInt).SequenceEqual(eos.Select(e => (int?)e)))
            return;
        var array = new JsonArray();
        foreach (var id in eos)
            array.Add(id);
        obj["eos_token_id"] = array;
    }

    internal static void SetInt(JsonObject obj, string key, int value)
    {
        if (Reader.AsInt(obj[key]) != value)
            obj[key] = value;
    }

    internal static void SetDouble(JsonObject obj, string key, double value)
    {
        if (Reader.AsDouble(obj[key]) is not { } old || old != value)
            obj[key] = PythonFloat(value);
    }

    /// <summary>A JSON number written as Python writes a float (<c>8.0</c>, <c>1e-06</c>), so Python reads it back as a float.</summary>
    internal static JsonNode PythonFloat(double value)
    {
        if (!double.IsFinite(value))
            throw new ArgumentException($"Cannot write the non-finite number {value} to config.json.");
        var text = value.ToString("R", CultureInfo.InvariantCulture).Replace('E', 'e');
        if (!text.Contains('.', StringComparison.Ordinal) && !text.Contains('e', StringComparison.Ordinal))
            text += ".0";
        return JsonValue.Create(JsonSerializer.Deserialize<JsonElement>(text))!;
    }

    internal static void SetBool(JsonObject obj, string key, bool value)
    {
        if (obj[key] is not { } node || node.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False) || node.GetValue<bool>() != value)
            obj[key] = value;
    }

    internal static void SetString(JsonObject obj, string key, string value)
    {
        if (obj[key] is not { } node || node.GetValueKind() != JsonValueKind.String || node.GetValue<string>() != value)
            obj[key] = value;
    }

    internal static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sorted(p.Value)))),
        JsonArray a => new JsonArray(a.Select(Sorted).ToArray()),
        null => null,
        _ => node.DeepClone(),
    };

    /// <summary>The key of transformers' heterogeneous per-layer overrides (PR #45333).</summary>
    internal const string PerLayerConfigKey = "per_layer_config";

    /// <summary>
    /// The entries of <c>per_layer_config</c> in file order, each checked before it is yielded: the value is an object,
    /// every key is a layer index below <paramref name="layers"/> listed once, and every entry is an object of overrides.
    /// The caller checks the override attributes (they differ per family) with the entry's reader.
    /// </summary>
    internal static IEnumerable<(int Layer, JsonObject Overrides, Reader Sub)> PerLayerEntries(Reader r, JsonNode perLayerNode, int layers)
    {
        if (perLayerNode is not JsonObject perLayer)
            throw r.Error(PerLayerConfigKey, $"must be an object mapping layer indices to attribute overrides, found {Describe(perLayerNode)}");

        var keyOfLayer = new Dictionary<int, string>();
        foreach (var (key, value) in perLayer)
        {
            var field = $"{PerLayerConfigKey}.{key}";
            if (key.Length == 0 || !key.All(char.IsAsciiDigit) || !int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var layer))
                throw r.Error(field, $"the key '{key}' is not a layer index (a non-negative decimal integer)");
            if (layer >= layers)
                throw r.Error(field, $"layer {layer} does not exist (num_hidden_layers is {layers})");
            if (!keyOfLayer.TryAdd(layer, key))
                throw r.Error(field, $"layer {layer} is listed twice ('{keyOfLayer[layer]}' and '{key}')");
            if (value is not JsonObject overrides)
                throw r.Error(field, $"must be an object of attribute overrides, found {Describe(value)}");
            yield return (layer, overrides, new Reader(overrides, r.Path, field + "."));
        }
    }

    /// <summary>
    /// Writes <c>per_layer_config</c> from the layers that differ from the global shape (in layer order), with
    /// zero-padded keys as transformers writes them so that they sort numerically; removes the key when none differs.
    /// </summary>
    internal static void WritePerLayerConfig(JsonObject obj, IReadOnlyList<(int Layer, JsonObject Values)> overrides)
    {
        if (overrides.Count == 0)
        {
            obj.Remove(PerLayerConfigKey);
            return;
        }

        var width = overrides[^1].Layer.ToString(CultureInfo.InvariantCulture).Length;
        var perLayer = new JsonObject();
        foreach (var (layer, values) in overrides)
            perLayer[layer.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0')] = values;
        obj[PerLayerConfigKey] = perLayer;
    }

    internal static string Describe(JsonNode? node) => node is null ? "null" : node.GetValueKind() switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => $"the string {node.ToJsonString()}",
        JsonValueKind.Number => $"the number {node.ToJsonString()}",
        JsonValueKind.True or JsonValueKind.False => $"the boolean {node.ToJsonString()}",
        _ => node.ToJsonString(),
    };

    /// <summary>Typed, strict access to the keys of one JSON object.</summary>
    internal readonly struct Reader(JsonObject obj, string path, string prefix = "")
    {
        public string Path => path;

        public CheckpointFormatException Error(string key, string problem) => new(path, problem, prefix + key);

        /// <summary>The value of a key, or null if absent or JSON null.</summary>
        public JsonNode? Node(string key) => obj.TryGetPropertyValue(key, out var node) ? node : null;

        public static int? AsInt(JsonNode? node) =>
            node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i) ? i : null;

        public static double? AsDouble(JsonNode? node) =>
            node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) ? d : null;

        public int? OptionalInt(string key)
        {
            var node = Node(key);
            if (node is null)
                return null;
            if (node.GetValueKind() != JsonValueKind.Number)
                throw Error(key, $"must be an integer, found {Describe(node)}");
            return AsInt(node) ?? throw Error(key, $"must be an integer in the 32-bit range, found {Describe(node)}");
        }

        public int? OptionalPositiveInt(string key)
        {
            var value = OptionalInt(key);
            if (value is <= 0)
                throw Error(key, $"must be positive, found {value}");
            return value;
        }

        public int RequiredPositiveInt(string key) =>
            OptionalPositiveInt(key) ?? throw Error(key, "the required field is missing");

        public double? OptionalDouble(string key)
        {
            var node = Node(key);
            if (node is null)
                return null;
            if (node.GetValueKind() != JsonValueKind.Number)
                throw Error(key, $"must be a number, found {Describe(node)}");
            return AsDouble(node) ?? throw Error(key, $"must be a finite number, found {Describe(node)}");
        }

        public double RequiredPositiveDouble(string key)
        {
            var value = OptionalDouble(key) ?? throw Error(key, "the required field is missing");
            if (!(value > 0) || double.IsInfinity(value))
                throw Error(key, $"must be a positive number, found {value.ToString(CultureInfo.InvariantCulture)}");
            return value;
        }

        public bool? OptionalBool(string key)
        {
            var node = Node(key);
            if (node is null)
                return null;
            return node.GetValueKind() switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Error(key, $"must be true or false, found {Describe(node)}"),
            };
        }

        public string? OptionalString(string key)
        {
            var node = Node(key);
            if (node is null)
                return null;
            if (node.GetValueKind() != JsonValueKind.String)
                throw Error(key, $"must be a string, found {Describe(node)}");
            return node.GetValue<string>();
        }
    }
}
