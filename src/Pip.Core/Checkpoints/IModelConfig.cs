namespace Pip.Checkpoints;

/// <summary>
/// What every supported model configuration (<see cref="LlamaConfig"/>, <see cref="OptConfig"/>) tells about a
/// checkpoint, independently of its architecture, and how it is written back.
/// </summary>
public interface IModelConfig
{
    /// <summary>The Hugging Face <c>model_type</c> (<c>llama</c>, <c>mistral</c>, <c>qwen2</c>, <c>opt</c>).</summary>
    string ModelType { get; }

    /// <summary>The Hugging Face architecture written to <c>architectures</c> (such as <c>LlamaForCausalLM</c> or <c>OPTForCausalLM</c>).</summary>
    string Architecture { get; }

    /// <summary><c>vocab_size</c>.</summary>
    int VocabSize { get; }

    /// <summary><c>hidden_size</c>.</summary>
    int HiddenSize { get; }

    /// <summary><c>num_hidden_layers</c>.</summary>
    int NumHiddenLayers { get; }

    /// <summary><c>num_attention_heads</c> (the global value).</summary>
    int NumAttentionHeads { get; }

    /// <summary><c>max_position_embeddings</c>.</summary>
    int MaxPositionEmbeddings { get; }

    /// <summary>Whether the output projection shares the token-embedding weight.</summary>
    bool TieWordEmbeddings { get; }

    /// <summary><c>torch_dtype</c>: <c>float32</c>, <c>float16</c> or <c>bfloat16</c>; null if absent.</summary>
    string? TorchDtype { get; }

    /// <summary><c>bos_token_id</c>, or null.</summary>
    int? BosTokenId { get; }

    /// <summary><c>eos_token_id</c> (one or several), empty if absent.</summary>
    IReadOnlyList<int> EosTokenIds { get; }

    /// <summary>A copy with another <c>torch_dtype</c>.</summary>
    /// <param name="torchDtype"><c>float32</c>, <c>float16</c>, <c>bfloat16</c>, or null to drop it.</param>
    /// <returns>The copy.</returns>
    IModelConfig WithTorchDtype(string? torchDtype);

    /// <summary>Writes the configuration as <c>config.json</c> text (validated: it loads back).</summary>
    /// <returns>Indented JSON with sorted keys and a final newline.</returns>
    /// <exception cref="ArgumentException">The configuration is inconsistent.</exception>
    string Serialize();
}

/// <summary>Reads a <c>config.json</c> of any supported architecture, choosing the parser by <c>model_type</c>.</summary>
public static class ModelConfigSerializer
{
    /// <summary>Reads and validates a <c>config.json</c> file.</summary>
    /// <param name="configJsonPath">The file.</param>
    /// <returns>An <see cref="OptConfig"/> for <c>model_type</c> <c>opt</c> (or architecture <c>OPTForCausalLM</c>), else a <see cref="LlamaConfig"/>.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The file is malformed or describes an unsupported model; the message names the file and the key.</exception>
    public static IModelConfig Load(string configJsonPath)
    {
        var obj = ConfigJson.LoadObject(configJsonPath, out var fullPath);
        return Parse(obj.ToJsonString(), fullPath);
    }

    /// <summary>Parses and validates the text of a <c>config.json</c> of any supported architecture.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="sourcePath">The file it came from, for error messages.</param>
    /// <returns>The configuration (see <see cref="Load"/>).</returns>
    /// <exception cref="CheckpointFormatException">The text is malformed or describes an unsupported model.</exception>
    public static IModelConfig Parse(string json, string sourcePath) =>
        IsOpt(ConfigJson.ParseObject(json, sourcePath))
            ? OptConfigSerializer.Parse(json, sourcePath)
            : LlamaConfigSerializer.Parse(json, sourcePath);

    /// <summary>Whether a configuration object describes OPT: <c>model_type</c> <c>opt</c>, or an <c>architectures</c> entry starting with <c>OPT</c>.</summary>
    private static bool IsOpt(System.Text.Json.Nodes.JsonObject obj)
    {
        if (obj["model_type"] is System.Text.Json.Nodes.JsonValue type && type.TryGetValue<string>(out var name))
            return name == OptConfigSerializer.ModelType;
        return obj["architectures"] is System.Text.Json.Nodes.JsonArray archs
            && archs.Any(a => a is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<string>(out var s) && s.StartsWith("OPT", StringComparison.Ordinal));
    }
}
