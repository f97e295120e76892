using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using static Pip.Checkpoints.ConfigJson;

namespace Pip.Checkpoints;

/// <summary>Reads and writes the Hugging Face <c>config.json</c> of Llama-layout decoders, strictly.</summary>
/// <remarks>
/// <para>Parsing refuses what Pip cannot run faithfully instead of ignoring it: an unknown architecture, a missing
/// required field (<c>vocab_size</c>, <c>hidden_size</c>, <c>intermediate_size</c>, <c>num_hidden_layers</c>,
/// <c>num_attention_heads</c>), a value of the wrong JSON type, a non-positive size, inconsistent heads, a
/// <c>hidden_act</c> other than <c>silu</c>, a rotary scaling other than <c>default</c>/<c>llama3</c>, a
/// <c>torch_dtype</c> other than float32/float16/bfloat16. Each error is a <see cref="CheckpointFormatException"/>
/// naming the file and the field.</para>
/// <para>Rotary settings are read from transformers 4 keys (<c>rope_theta</c>, <c>rope_scaling</c>) and from the
/// transformers 5 key <c>rope_parameters</c> (which holds <c>rope_theta</c> too). A scaling of type <c>default</c>
/// is the same as none and gives <see cref="LlamaConfig.RopeScaling"/> = null. <c>dtype</c> (transformers 5) is an
/// alias of <c>torch_dtype</c>.</para>
/// <para>Layers that differ (after width pruning) are described by <c>per_layer_config</c>, the format of Hugging Face
/// transformers PR #45333 ("heterogeneous"/per-layer configurations): an object whose keys are zero-based layer
/// indices written as decimal strings (zero-padded to equal width, so they sort numerically) and whose values hold
/// only the attributes that differ from the global ones. Pip reads and writes the attributes
/// <c>intermediate_size</c>, <c>num_attention_heads</c> and <c>num_key_value_heads</c>; any other override (such as
/// <c>head_dim</c>, or a non-empty <c>skip</c>) is refused, as are indices outside the layers and a layer listed twice
/// (<c>"1"</c> and <c>"01"</c>). The resolved shapes are <see cref="LlamaConfig.LayerShapes"/>. Writing is sparse, as
/// transformers writes by default: layers and attributes equal to the global values are omitted, and the key is
/// removed when no layer differs. That transformers' own <c>LlamaForCausalLM</c> builds layers of these sizes
/// is not claimed here: its documentation notes that model code must consume the resolved per-layer configuration.</para>
/// <para>Serializing starts from <see cref="LlamaConfig.Raw"/> (so unknown keys survive), writes the typed properties
/// over it, and sorts keys recursively, indented by two spaces, as transformers does.</para>
/// </remarks>
public static class LlamaConfigSerializer
{
    private const string PerLayerConfigKey = ConfigJson.PerLayerConfigKey;

    private static readonly string[] PerLayerAttributes = ["intermediate_size", "num_attention_heads", "num_key_value_heads"];

    private static readonly string[] Llama3Keys = ["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"];

    /// <summary>Reads and validates a <c>config.json</c> file.</summary>
    /// <param name="configJsonPath">The file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The file is malformed or describes an unsupported model.</exception>
    public static LlamaConfig Load(string configJsonPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(configJsonPath);
        var fullPath = Path.GetFullPath(configJsonPath);
        var bytes = File.ReadAllBytes(fullPath);
        string json;
        try
        {
            json = new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new CheckpointFormatException(fullPath, "the file is not valid UTF-8", null, e);
        }
        return Parse(json, fullPath);
    }

    /// <summary>Parses and validates the text of a <c>config.json</c>.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="sourcePath">The file it came from, for error messages.</param>
    /// <exception cref="CheckpointFormatException">The text is malformed or describes an unsupported model.</exception>
    public static LlamaConfig Parse(string json, string sourcePath)
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
        if (root is not JsonObject obj)
            throw new CheckpointFormatException(sourcePath, "the configuration must be a JSON object");

        var r = new Reader(obj, sourcePath);
        var family = ReadFamily(r);

        var vocab = r.RequiredPositiveInt("vocab_size");
        var hidden = r.RequiredPositiveInt("hidden_size");
        var intermediate = r.RequiredPositiveInt("intermediate_size");
        var layers = r.RequiredPositiveInt("num_hidden_layers");
        var heads = r.RequiredPositiveInt("num_attention_heads");
        var kvHeads = r.OptionalPositiveInt("num_key_value_heads") ?? heads;
        if (heads % kvHeads != 0)
            throw r.Error("num_key_value_heads", $"num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kvHeads})");
        var headDim = r.OptionalPositiveInt("head_dim");
        if (headDim is null && hidden % heads != 0)
            throw r.Error("hidden_size", $"hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads}) and head_dim is absent");

        var hiddenAct = r.OptionalString("hidden_act") ?? "silu";
        if (hiddenAct != "silu")
            throw r.Error("hidden_act", $"the activation '{hiddenAct}' is not supported (only 'silu')");

        var partialRotary = r.OptionalDouble("partial_rotary_factor");
        if (partialRotary is not null && partialRotary != 1.0)
            throw r.Error("partial_rotary_factor", $"partial rotary embeddings ({partialRotary.Value.ToString(CultureInfo.InvariantCulture)}) are not supported");

        var (ropeTheta, ropeScaling) = ReadRope(r);

        var layerShapes = ReadPerLayerConfig(r, layers, new LayerShape(heads, kvHeads, intermediate));

        var rmsEps = r.OptionalDouble("rms_norm_eps") ?? 1e-6;
        if (!(rmsEps > 0) || double.IsInfinity(rmsEps))
            throw r.Error("rms_norm_eps", $"must be a positive number, found {rmsEps.ToString(CultureInfo.InvariantCulture)}");

        return new LlamaConfig
        {
            Family = family,
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = intermediate,
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim ?? hidden / heads,
            RmsNormEps = rmsEps,
            RopeTheta = ropeTheta,
            RopeScaling = ropeScaling,
            MaxPositionEmbeddings = r.OptionalPositiveInt("max_position_embeddings") ?? 2048,
            TieWordEmbeddings = r.OptionalBool("tie_word_embeddings") ?? false,
            AttentionBias = family == DecoderFamily.Qwen2 || (r.OptionalBool("attention_bias") ?? false),
            MlpBias = r.OptionalBool("mlp_bias") ?? false,
            HiddenAct = hiddenAct,
            TorchDtype = ReadDtype(r),
            BosTokenId = r.OptionalInt("bos_token_id"),
            EosTokenIds = ReadEos(r),
            LayerShapes = layerShapes,
            Raw = (JsonObject)obj.DeepClone(),
        };
    }

    /// <summary>Writes a configuration as <c>config.json</c> text.</summary>
    /// <param name="config">The configuration.</param>
    /// <returns>Indented JSON with sorted keys and a final newline.</returns>
    /// <exception cref="ArgumentException">The configuration is inconsistent (it would not load back).</exception>
    public static string Serialize(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var obj = config.Raw is null ? new JsonObject() : (JsonObject)config.Raw.DeepClone();

        var (archName, modelType) = Names(config.Family);
        var rawArch = obj["architectures"] as JsonArray;
        if (rawArch is null || rawArch.Count == 0 || rawArch.Any(a => a is null || a.GetValueKind() != JsonValueKind.String || FamilyOfArchitecture(a.GetValue<string>()) != config.Family))
            obj["architectures"] = new JsonArray(archName);
        SetString(obj, "model_type", modelType);

        SetInt(obj, "vocab_size", config.VocabSize);
        SetInt(obj, "hidden_size", config.HiddenSize);
        SetInt(obj, "intermediate_size", config.IntermediateSize);
        SetInt(obj, "num_hidden_layers", config.NumHiddenLayers);
        SetInt(obj, "num_attention_heads", config.NumAttentionHeads);
        SetInt(obj, "num_key_value_heads", config.NumKeyValueHeads);
        SetInt(obj, "head_dim", config.HeadDim);
        WritePerLayerConfig(obj, config);
        SetDouble(obj, "rms_norm_eps", config.RmsNormEps);
        SetInt(obj, "max_position_embeddings", config.MaxPositionEmbeddings);
        SetBool(obj, "tie_word_embeddings", config.TieWordEmbeddings);
        if (config.Family != DecoderFamily.Qwen2)
            SetBool(obj, "attention_bias", config.AttentionBias);
        else if (!config.AttentionBias)
            throw new ArgumentException("Qwen2 models always have attention biases; AttentionBias must be true.", nameof(config));
        SetBool(obj, "mlp_bias", config.MlpBias);
        SetString(obj, "hidden_act", config.HiddenAct);
        WriteDtype(obj, config.TorchDtype);
        if (config.BosTokenId is { } bos)
            SetInt(obj, "bos_token_id", bos);
        else if (obj.ContainsKey("bos_token_id"))
            obj["bos_token_id"] = null;
        WriteEos(obj, config.EosTokenIds);
        WriteRope(obj, config.RopeTheta, config.RopeScaling);

        var text = Sorted(obj)!.ToJsonString(WriteOptions) + "\n";
        try
        {
            Parse(text, "<serialized configuration>");
        }
        catch (CheckpointFormatException e)
        {
            throw new ArgumentException($"The configuration is inconsistent and would not load back: {e.Problem} ({e.Field})", nameof(config), e);
        }
        return text;
    }

    /// <summary>Writes a configuration to a <c>config.json</c> file (UTF-8, no byte-order mark).</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="path">The file to write (replaced if it exists).</param>
    /// <exception cref="ArgumentException">The configuration is inconsistent.</exception>
    public static void Save(LlamaConfig config, string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        File.WriteAllText(path, Serialize(config), new UTF8Encoding(false));
    }

    private static (string Architecture, string ModelType) Names(DecoderFamily family) => family switch
    {
        DecoderFamily.Llama => ("LlamaForCausalLM", "llama"),
        DecoderFamily.Mistral => ("MistralForCausalLM", "mistral"),
        DecoderFamily.Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
        _ => throw new ArgumentOutOfRangeException(nameof(family), family, "Unknown decoder family."),
    };

    private static DecoderFamily? FamilyOfArchitecture(string name) => name switch
    {
        "LlamaForCausalLM" => DecoderFamily.Llama,
        "MistralForCausalLM" => DecoderFamily.Mistral,
        "Qwen2ForCausalLM" => DecoderFamily.Qwen2,
        _ => null,
    };

    private static DecoderFamily? FamilyOfModelType(string name) => name switch
    {
        "llama" => DecoderFamily.Llama,
        "mistral" => DecoderFamily.Mistral,
        "qwen2" => DecoderFamily.Qwen2,
        _ => null,
    };

    private static DecoderFamily ReadFamily(Reader r)
    {
        if (r.Node("architectures") is { } archNode)
        {
            if (archNode is not JsonArray archs || archs.Count == 0)
                throw r.Error("architectures", $"must be a non-empty array of strings, found {Describe(archNode)}");
            DecoderFamily? family = null;
            foreach (var a in archs)
            {
                if (a is null || a.GetValueKind() != JsonValueKind.String)
                    throw r.Error("architectures", $"must hold strings, found {Describe(a)}");
                var name = a.GetValue<string>();
                var f = FamilyOfArchitecture(name)
                    ?? throw r.Error("architectures", $"the architecture '{name}' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
                if (family is not null && family != f)
                    throw r.Error("architectures", "lists architectures of different families");
                family = f;
            }
            return family!.Value;
        }

        var modelType = r.OptionalString("model_type")
            ?? throw r.Error("architectures", "neither 'architectures' nor 'model_type' is present, so the model family is unknown");
        return FamilyOfModelType(modelType)
            ?? throw r.Error("model_type", $"the model type '{modelType}' is not supported (supported: llama, mistral, qwen2)");
    }

    private static (double Theta, RopeScaling? Scaling) ReadRope(Reader r)
    {
        // transformers 5 keeps everything in rope_parameters; transformers 4 uses rope_theta + rope_scaling.
        string key;
        JsonObject? rope = null;
        if (r.Node("rope_parameters") is { } parameters)
        {
            key = "rope_parameters";
            rope = parameters as JsonObject ?? throw r.Error(key, $"must be an object or null, found {Describe(parameters)}");
        }
        else
        {
            key = "rope_scaling";
            if (r.Node("rope_scaling") is { } scaling)
                rope = scaling as JsonObject ?? throw r.Error(key, $"must be an object or null, found {Describe(scaling)}");
        }

        var theta = r.OptionalDouble("rope_theta") ?? 10000.0;
        if (rope is null)
        {
            CheckTheta(r, "rope_theta", theta);
            return (theta, null);
        }

        var sub = new Reader(rope, r.Path, key + ".");
        if (sub.OptionalDouble("rope_theta") is { } innerTheta)
        {
            theta = innerTheta;
            CheckTheta(sub, "rope_theta", theta);
        }
        else
            CheckTheta(r, "rope_theta", theta);

        var partial = sub.OptionalDouble("partial_rotary_factor");
        if (partial is not null && partial != 1.0)
            throw sub.Error("partial_rotary_factor", "partial rotary embeddings are not supported");

        var ropeType = sub.OptionalString("rope_type");
        var legacyType = sub.OptionalString("type");
        if (ropeType is not null && legacyType is not null && ropeType != legacyType)
            throw sub.Error("rope_type", $"'rope_type' ({ropeType}) and 'type' ({legacyType}) disagree");
        var type = ropeType ?? legacyType ?? "default";
        switch (type)
        {
            case "default":
                return (theta, null);
            case "llama3":
                var factor = sub.RequiredPositiveDouble("factor");
                var low = sub.RequiredPositiveDouble("low_freq_factor");
                var high = sub.RequiredPositiveDouble("high_freq_factor");
                if (!(high > low))
                    throw sub.Error("high_freq_factor", $"high_freq_factor ({high.ToString(CultureInfo.InvariantCulture)}) must exceed low_freq_factor ({low.ToString(CultureInfo.InvariantCulture)})");
                var original = sub.RequiredPositiveInt("original_max_position_embeddings");
                return (theta, new RopeScaling("llama3", factor, low, high, original));
            default:
                throw sub.Error(ropeType is not null ? "rope_type" : "type",
                    $"the rotary scaling type '{type}' is not supported (supported: 'default', 'llama3'); Pip will not silently ignore it");
        }
    }

    private static LayerShape[]? ReadPerLayerConfig(Reader r, int layers, LayerShape global)
    {
        var node = r.Node(PerLayerConfigKey);
        if (node is null)
            return null;

        var shapes = Enumerable.Repeat(global, layers).ToArray();
        foreach (var (layer, overrides, sub) in ConfigJson.PerLayerEntries(r, node, layers))
        {
            foreach (var (attribute, attributeValue) in overrides)
            {
                if (attribute == "skip")
                {
                    if (attributeValue is null)
                        continue;
                    if (attributeValue is not JsonArray skipped || skipped.Any(x => x is null || x.GetValueKind() != JsonValueKind.String))
                        throw sub.Error(attribute, $"must be a list of sub-module names, found {Describe(attributeValue)}");
                    if (skipped.Count > 0)
                        throw sub.Error(attribute, $"skipping sub-modules ({string.Join(", ", skipped.Select(x => x!.GetValue<string>()))}) is not supported by Pip");
                }
                else if (!PerLayerAttributes.Contains(attribute, StringComparer.Ordinal))
                {
                    throw sub.Error(attribute, $"a per-layer override of '{attribute}' is not supported (supported: {string.Join(", ", PerLayerAttributes)})");
                }
                else if (attributeValue is null)
                {
                    throw sub.Error(attribute, "must be a positive integer, found null");
                }
            }

            var shape = new LayerShape(
                sub.OptionalPositiveInt("num_attention_heads") ?? global.NumAttentionHeads,
                sub.OptionalPositiveInt("num_key_value_heads") ?? global.NumKeyValueHeads,
                sub.OptionalPositiveInt("intermediate_size") ?? global.IntermediateSize);
            if (shape.NumAttentionHeads % shape.NumKeyValueHeads != 0)
                throw sub.Error("num_key_value_heads", $"layer {layer}: num_attention_heads ({shape.NumAttentionHeads}) is not a multiple of num_key_value_heads ({shape.NumKeyValueHeads})");
            shapes[layer] = shape;
        }
        return shapes.All(s => s == global) ? null : shapes;
    }

    private static void WritePerLayerConfig(JsonObject obj, LlamaConfig config)
    {
        var shapes = config.LayerShapes;
        if (shapes is not null && shapes.Count != config.NumHiddenLayers)
            throw new ArgumentException($"The configuration lists {shapes.Count} layer shapes for {config.NumHiddenLayers} layers.", nameof(config));

        var global = config.GlobalShape;
        var overrides = new List<(int Layer, JsonObject Values)>();
        for (var layer = 0; shapes is not null && layer < shapes.Count; layer++)
        {
            var s = shapes[layer] ?? throw new ArgumentException($"The shape of layer {layer} is null.", nameof(config));
            if (s == global)
                continue;
            var values = new JsonObject();
            if (s.IntermediateSize != global.IntermediateSize)
                values["intermediate_size"] = s.IntermediateSize;
            if (s.NumAttentionHeads != global.NumAttentionHeads)
                values["num_attention_heads"] = s.NumAttentionHeads;
            if (s.NumKeyValueHeads != global.NumKeyValueHeads)
                values["num_key_value_heads"] = s.NumKeyValueHeads;
            overrides.Add((layer, values));
        }

        ConfigJson.WritePerLayerConfig(obj, overrides);
    }

    private static void CheckTheta(Reader r, string key, double theta)
    {
        if (!(theta > 0) || double.IsInfinity(theta))
            throw r.Error(key, $"must be a positive number, found {theta.ToString(CultureInfo.InvariantCulture)}");
    }

    private static void WriteRope(JsonObject obj, double theta, RopeScaling? scaling)
    {
        if (scaling is not null && scaling.RopeType != "llama3")
            throw new ArgumentException($"Unsupported rotary scaling type '{scaling.RopeType}' (supported: llama3, or null for none).", nameof(scaling));

        if (obj["rope_parameters"] is JsonObject parameters)
        {
            SetDouble(parameters, "rope_theta", theta);
            WriteScaling(parameters, scaling);
            if (obj.ContainsKey("rope_theta"))
                SetDouble(obj, "rope_theta", theta);
            if (obj["rope_scaling"] is JsonObject legacy)
                WriteScaling(legacy, scaling);
            return;
        }

        SetDouble(obj, "rope_theta", theta);
        if (obj["rope_scaling"] is JsonObject existing)
        {
            WriteScaling(existing, scaling);
            return;
        }
        if (scaling is not null)
        {
            var created = new JsonObject();
            WriteScaling(created, scaling);
            obj["rope_scaling"] = created;
        }
        else if (obj.ContainsKey("rope_scaling"))
            obj["rope_scaling"] = null;
    }

    private static void WriteScaling(JsonObject rope, RopeScaling? scaling)
    {
        if (scaling is null)
        {
            var currentType = (rope["rope_type"] ?? rope["type"]) is { } t && t.GetValueKind() == JsonValueKind.String ? t.GetValue<string>() : "default";
            if (currentType == "default")
                return;
            foreach (var k in Llama3Keys)
                rope.Remove(k);
            rope.Remove("type");
            rope["rope_type"] = "default";
            return;
        }
        SetString(rope, "rope_type", scaling.RopeType);
        if (rope.ContainsKey("type"))
            SetString(rope, "type", scaling.RopeType);
        SetDouble(rope, "factor", scaling.Factor);
        SetDouble(rope, "low_freq_factor", scaling.LowFreqFactor);
        SetDouble(rope, "high_freq_factor", scaling.HighFreqFactor);
        SetInt(rope, "original_max_position_embeddings", scaling.OriginalMaxPositionEmbeddings);
    }
}
