using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static Pip.Checkpoints.ConfigJson;

namespace Pip.Checkpoints;

/// <summary>Reads and writes the Hugging Face <c>config.json</c> of <c>OPTForCausalLM</c>, strictly.</summary>
/// <remarks>
/// <para>Keys that change the forward pass are read and checked: <c>vocab_size</c>, <c>hidden_size</c>,
/// <c>ffn_dim</c>, <c>num_hidden_layers</c>, <c>num_attention_heads</c> (required), <c>word_embed_proj_dim</c>,
/// <c>max_position_embeddings</c>, <c>do_layer_norm_before</c>, <c>_remove_final_layer_norm</c>,
/// <c>enable_bias</c>, <c>layer_norm_elementwise_affine</c>, <c>activation_function</c> (<c>relu</c>, <c>gelu</c>
/// or <c>silu</c>; anything else is refused), <c>tie_word_embeddings</c>, <c>torch_dtype</c>/<c>dtype</c>, token
/// ids, Pip's <c>head_dim</c> (written only when heads were removed) and <c>per_layer_config</c> (attributes
/// <c>num_attention_heads</c> and <c>ffn_dim</c>). Refused explicitly: another <c>model_type</c> or architecture,
/// a <c>d_model</c> that disagrees with <c>hidden_size</c>, a <c>quantization_config</c> (quantized weights are not
/// supported) and any other per-layer override. Keys that only matter for training (<c>dropout</c>,
/// <c>attention_dropout</c>, <c>activation_dropout</c>, <c>layerdrop</c>, <c>init_std</c>) or for generation
/// settings (<c>use_cache</c>, <c>prefix</c>, ...) are kept in <see cref="OptConfig.Raw"/> and written back
/// unchanged. Every error is a <see cref="CheckpointFormatException"/> naming the file and the key.</para>
/// <para>Serializing starts from <see cref="OptConfig.Raw"/>, writes the typed properties over it and sorts keys
/// recursively, indented by two spaces, as transformers does.</para>
/// </remarks>
public static class OptConfigSerializer
{
    /// <summary>The Hugging Face <c>model_type</c> of OPT.</summary>
    public const string ModelType = "opt";

    /// <summary>The Hugging Face architecture name.</summary>
    public const string ArchitectureName = "OPTForCausalLM";

    private const string PerLayerConfigKey = ConfigJson.PerLayerConfigKey;

    private static readonly string[] PerLayerAttributes = ["ffn_dim", "num_attention_heads"];

    private static readonly string[] Activations = ["relu", "gelu", "silu"];

    /// <summary>Reads and validates a <c>config.json</c> file.</summary>
    /// <param name="configJsonPath">The file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The file is malformed or describes an unsupported model.</exception>
    public static OptConfig Load(string configJsonPath)
    {
        var obj = LoadObject(configJsonPath, out var fullPath);
        return Parse(obj, fullPath);
    }

    /// <summary>Parses and validates the text of a <c>config.json</c>.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="sourcePath">The file it came from, for error messages.</param>
    /// <exception cref="CheckpointFormatException">The text is malformed or describes an unsupported model.</exception>
    public static OptConfig Parse(string json, string sourcePath) => Parse(ParseObject(json, sourcePath), sourcePath);

    private static OptConfig Parse(JsonObject obj, string sourcePath)
    {
        var r = new Reader(obj, sourcePath);
        var modelType = r.OptionalString("model_type");
        if (modelType is not null && modelType != ModelType)
            throw r.Error("model_type", $"the model type '{modelType}' is not OPT (expected '{ModelType}')");
        if (r.Node("architectures") is { } archNode)
        {
            if (archNode is not JsonArray archs || archs.Count == 0)
                throw r.Error("architectures", $"must be a non-empty array of strings, found {Describe(archNode)}");
            foreach (var a in archs)
            {
                if (a is null || a.GetValueKind() != JsonValueKind.String)
                    throw r.Error("architectures", $"must hold strings, found {Describe(a)}");
                if (a.GetValue<string>() != ArchitectureName)
                    throw r.Error("architectures", $"the architecture '{a.GetValue<string>()}' is not supported for OPT (supported: {ArchitectureName})");
            }
        }
        else if (modelType is null)
            throw r.Error("model_type", "neither 'architectures' nor 'model_type' is present, so the model family is unknown");

        if (r.Node("quantization_config") is not null)
            throw r.Error("quantization_config", "quantized checkpoints are not supported");

        var vocab = r.RequiredPositiveInt("vocab_size");
        var hiddenKey = r.Node("hidden_size") is null && r.Node("d_model") is not null ? "d_model" : "hidden_size";
        var hidden = r.RequiredPositiveInt(hiddenKey);
        if (hiddenKey == "hidden_size" && r.OptionalPositiveInt("d_model") is { } dModel && dModel != hidden)
            throw r.Error("d_model", $"d_model ({dModel}) disagrees with hidden_size ({hidden})");
        var ffn = r.RequiredPositiveInt("ffn_dim");
        var layers = r.RequiredPositiveInt("num_hidden_layers");
        var heads = r.RequiredPositiveInt("num_attention_heads");
        var headDim = r.OptionalPositiveInt("head_dim");
        if (headDim is null && hidden % heads != 0)
            throw r.Error("num_attention_heads", $"hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads}) and head_dim is absent");

        var activation = r.OptionalString("activation_function") ?? "relu";
        if (!Activations.Contains(activation, StringComparer.Ordinal))
            throw r.Error("activation_function", $"the activation '{activation}' is not supported (supported: {string.Join(", ", Activations)})");

        var layerShapes = ReadPerLayerConfig(r, layers, new OptLayerShape(heads, ffn));

        return new OptConfig
        {
            VocabSize = vocab,
            HiddenSize = hidden,
            FfnDim = ffn,
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            HeadDim = headDim ?? hidden / heads,
            WordEmbedProjDim = r.OptionalPositiveInt("word_embed_proj_dim") ?? hidden,
            MaxPositionEmbeddings = r.OptionalPositiveInt("max_position_embeddings") ?? 2048,
            DoLayerNormBefore = r.OptionalBool("do_layer_norm_before") ?? true,
            RemoveFinalLayerNorm = r.OptionalBool("_remove_final_layer_norm") ?? false,
            EnableBias = r.OptionalBool("enable_bias") ?? true,
            LayerNormElementwiseAffine = r.OptionalBool("layer_norm_elementwise_affine") ?? true,
            ActivationFunction = activation,
            TieWordEmbeddings = r.OptionalBool("tie_word_embeddings") ?? true,
            TorchDtype = ReadDtype(r),
            BosTokenId = r.Node("bos_token_id") is null && !obj.ContainsKey("bos_token_id") ? 2 : r.OptionalInt("bos_token_id"),
            EosTokenIds = obj.ContainsKey("eos_token_id") ? ReadEos(r) : [2],
            PadTokenId = obj.ContainsKey("pad_token_id") ? r.OptionalInt("pad_token_id") : 1,
            LayerShapes = layerShapes,
            Raw = (JsonObject)obj.DeepClone(),
        };
    }

    /// <summary>Writes a configuration as <c>config.json</c> text.</summary>
    /// <param name="config">The configuration.</param>
    /// <returns>Indented JSON with sorted keys and a final newline.</returns>
    /// <exception cref="ArgumentException">The configuration is inconsistent (it would not load back).</exception>
    public static string Serialize(OptConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var obj = config.Raw is null ? new JsonObject() : (JsonObject)config.Raw.DeepClone();
        if (obj["architectures"] is not JsonArray { Count: 1 } archs || archs[0] is not JsonValue v || !v.TryGetValue<string>(out var arch) || arch != ArchitectureName)
            obj["architectures"] = new JsonArray(ArchitectureName);
        SetString(obj, "model_type", ModelType);
        SetInt(obj, "vocab_size", config.VocabSize);
        SetInt(obj, "hidden_size", config.HiddenSize);
        if (obj.ContainsKey("d_model")) SetInt(obj, "d_model", config.HiddenSize);
        SetInt(obj, "ffn_dim", config.FfnDim);
        SetInt(obj, "num_hidden_layers", config.NumHiddenLayers);
        SetInt(obj, "num_attention_heads", config.NumAttentionHeads);
        // head_dim is Pip's: transformers derives it from hidden_size / num_attention_heads, so it is written only
        // when that would be wrong (heads were removed) or when the file had it.
        var derived = config.HiddenSize % config.NumAttentionHeads == 0 && config.HiddenSize / config.NumAttentionHeads == config.HeadDim;
        if (!derived || obj.ContainsKey("head_dim")) SetInt(obj, "head_dim", config.HeadDim);
        SetInt(obj, "word_embed_proj_dim", config.WordEmbedProjDim);
        SetInt(obj, "max_position_embeddings", config.MaxPositionEmbeddings);
        SetBool(obj, "do_layer_norm_before", config.DoLayerNormBefore);
        if (config.RemoveFinalLayerNorm || obj.ContainsKey("_remove_final_layer_norm")) SetBool(obj, "_remove_final_layer_norm", config.RemoveFinalLayerNorm);
        SetBool(obj, "enable_bias", config.EnableBias);
        SetBool(obj, "layer_norm_elementwise_affine", config.LayerNormElementwiseAffine);
        SetString(obj, "activation_function", config.ActivationFunction);
        SetBool(obj, "tie_word_embeddings", config.TieWordEmbeddings);
        WriteDtype(obj, config.TorchDtype);
        WriteOptionalInt(obj, "bos_token_id", config.BosTokenId);
        WriteOptionalInt(obj, "pad_token_id", config.PadTokenId);
        if (config.EosTokenIds.Count == 0) obj["eos_token_id"] = null;
        else WriteEos(obj, config.EosTokenIds);
        WritePerLayerConfig(obj, config);

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
    public static void Save(OptConfig config, string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        File.WriteAllText(path, Serialize(config), new UTF8Encoding(false));
    }

    private static void WriteOptionalInt(JsonObject obj, string key, int? value)
    {
        // An explicit null is kept as null: transformers' defaults (bos 2, pad 1) apply only to an absent key.
        if (value is { } v) SetInt(obj, key, v);
        else obj[key] = null;
    }

    private static OptLayerShape[]? ReadPerLayerConfig(Reader r, int layers, OptLayerShape global)
    {
        var node = r.Node(PerLayerConfigKey);
        if (node is null)
            return null;
        var shapes = Enumerable.Repeat(global, layers).ToArray();
        foreach (var (layer, overrides, sub) in ConfigJson.PerLayerEntries(r, node, layers))
        {
            foreach (var (attribute, attributeValue) in overrides)
            {
                if (!PerLayerAttributes.Contains(attribute, StringComparer.Ordinal))
                    throw sub.Error(attribute, $"a per-layer override of '{attribute}' is not supported for OPT (supported: {string.Join(", ", PerLayerAttributes)})");
                if (attributeValue is null)
                    throw sub.Error(attribute, "must be a positive integer, found null");
            }
            shapes[layer] = new OptLayerShape(
                sub.OptionalPositiveInt("num_attention_heads") ?? global.NumAttentionHeads,
                sub.OptionalPositiveInt("ffn_dim") ?? global.FfnDim);
        }
        return shapes.All(s => s == global) ? null : shapes;
    }

    private static void WritePerLayerConfig(JsonObject obj, OptConfig config)
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
            if (s.FfnDim != global.FfnDim) values["ffn_dim"] = s.FfnDim;
            if (s.NumAttentionHeads != global.NumAttentionHeads) values["num_attention_heads"] = s.NumAttentionHeads;
            overrides.Add((layer, values));
        }
        ConfigJson.WritePerLayerConfig(obj, overrides);
    }
}
