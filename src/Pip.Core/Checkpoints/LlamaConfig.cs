using System.Text.Json.Nodes;

namespace Pip.Checkpoints;

/// <summary>The decoder families that share the Llama layout.</summary>
public enum DecoderFamily
{
    /// <summary><c>LlamaForCausalLM</c>.</summary>
    Llama,
    /// <summary><c>MistralForCausalLM</c> (Llama layout; sliding window ignored for sequences shorter than it).</summary>
    Mistral,
    /// <summary><c>Qwen2ForCausalLM</c> (Llama layout with q/k/v biases).</summary>
    Qwen2,
}

/// <summary>Rotary-embedding scaling as in <c>rope_scaling</c> of a Hugging Face config.</summary>
/// <param name="RopeType">The scaling type; Pip implements <c>llama3</c> and <c>default</c>.</param>
/// <param name="Factor">The scaling factor.</param>
/// <param name="LowFreqFactor">llama3: the low-frequency factor.</param>
/// <param name="HighFreqFactor">llama3: the high-frequency factor.</param>
/// <param name="OriginalMaxPositionEmbeddings">llama3: the context length the model was trained with.</param>
public sealed record RopeScaling(string RopeType, double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositionEmbeddings);

/// <summary>
/// The configuration of a Llama-layout decoder (Llama, Mistral, Qwen2), as read from a Hugging Face <c>config.json</c>.
/// </summary>
/// <remarks>
/// Immutable. <see cref="Raw"/> keeps every key of the file so that a saved copy loses nothing it does not understand;
/// the serializer writes typed properties over the raw keys, so a changed copy (fewer layers, say) stays consistent.
/// </remarks>
public sealed record LlamaConfig
{
    /// <summary>The model family (from <c>architectures</c>/<c>model_type</c>).</summary>
    public required DecoderFamily Family { get; init; }

    /// <summary><c>vocab_size</c>.</summary>
    public required int VocabSize { get; init; }

    /// <summary><c>hidden_size</c>.</summary>
    public required int HiddenSize { get; init; }

    /// <summary><c>intermediate_size</c>.</summary>
    public required int IntermediateSize { get; init; }

    /// <summary><c>num_hidden_layers</c>.</summary>
    public required int NumHiddenLayers { get; init; }

    /// <summary><c>num_attention_heads</c>.</summary>
    public required int NumAttentionHeads { get; init; }

    /// <summary><c>num_key_value_heads</c> (defaults to <see cref="NumAttentionHeads"/>).</summary>
    public required int NumKeyValueHeads { get; init; }

    /// <summary><c>head_dim</c> (defaults to hidden_size / num_attention_heads).</summary>
    public required int HeadDim { get; init; }

    /// <summary><c>rms_norm_eps</c>.</summary>
    public double RmsNormEps { get; init; } = 1e-6;

    /// <summary><c>rope_theta</c>.</summary>
    public double RopeTheta { get; init; } = 10000.0;

    /// <summary><c>rope_scaling</c>, or null.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary><c>max_position_embeddings</c>.</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;

    /// <summary><c>tie_word_embeddings</c>.</summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>Whether q/k/v projections have biases (<c>attention_bias</c>; always true for Qwen2).</summary>
    public bool AttentionBias { get; init; }

    /// <summary>Whether the MLP projections have biases (<c>mlp_bias</c>).</summary>
    public bool MlpBias { get; init; }

    /// <summary><c>hidden_act</c>; only <c>silu</c> is supported.</summary>
    public string HiddenAct { get; init; } = "silu";

    /// <summary><c>torch_dtype</c> (or <c>dtype</c>): <c>float32</c>, <c>float16</c> or <c>bfloat16</c>; null if absent.</summary>
    public string? TorchDtype { get; init; }

    /// <summary><c>bos_token_id</c>, or null.</summary>
    public int? BosTokenId { get; init; }

    /// <summary><c>eos_token_id</c> (one or several), empty if absent.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = Array.Empty<int>();

    /// <summary>Every key of the source file, for lossless saving. Null for a config built in code.</summary>
    public JsonObject? Raw { get; init; }

    /// <summary>Number of query heads that share one key/value head.</summary>
    public int GroupSize => NumAttentionHeads / NumKeyValueHeads;
}
