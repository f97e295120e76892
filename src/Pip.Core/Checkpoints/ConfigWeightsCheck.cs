using System.Globalization;
using System.Text.RegularExpressions;

namespace Pip.Checkpoints;

/// <summary>
/// Bounds the sizes a <c>config.json</c> asks for by the weights a checkpoint actually holds, reading only the
/// safetensors headers: run it after loading the configuration and BEFORE building a model from it, so that a config
/// that asks for a billion layers (or a vocabulary, width or position table the weights do not have) is refused at
/// once instead of allocating.
/// </summary>
/// <remarks>
/// Every size that drives an allocation is compared with the tensor that holds it: the layer count with the layer
/// indices present; <c>vocab_size</c> and <c>hidden_size</c> (OPT: <c>word_embed_proj_dim</c>) with the token
/// embedding (and <c>lm_head</c> when untied); per layer, <c>num_attention_heads</c> × <c>head_dim</c> with the query
/// projection, <c>num_key_value_heads</c> × <c>head_dim</c> with the key projection, <c>intermediate_size</c> (OPT:
/// <c>ffn_dim</c>) with the MLP's first projection, <c>hidden_size</c> with their inputs; OPT's
/// <c>max_position_embeddings</c> with its learned position table. (Llama-family models precompute no position table:
/// rotary embeddings are computed for the positions a batch uses.) A tensor that defines one of these sizes must be
/// present. Each error is a <see cref="CheckpointFormatException"/> naming <c>config.json</c>, the key, its value and
/// what the weights say.
/// </remarks>
public static partial class ConfigWeightsCheck
{
    /// <summary>Checks a configuration against the tensor headers of its checkpoint.</summary>
    /// <param name="checkpoint">The open checkpoint (only headers are read).</param>
    /// <param name="config">The configuration read from its <c>config.json</c>.</param>
    /// <exception cref="CheckpointFormatException">A size of the configuration disagrees with the weights, or a tensor
    /// that defines one is missing.</exception>
    /// <exception cref="NotSupportedException">The configuration is of an architecture this check does not know.</exception>
    public static void Check(CheckpointFolder checkpoint, IModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(config);
        switch (config)
        {
            case LlamaConfig llama:
                CheckLlama(new Weights(checkpoint, "model."), llama);
                break;
            case OptConfig opt:
                // Checkpoints saved from OPTModel name their tensors decoder.* without the model. prefix.
                var prefix = !checkpoint.TensorNames.Any(n => n.StartsWith("model.", StringComparison.Ordinal))
                    && checkpoint.TensorNames.Any(n => n.StartsWith("decoder.", StringComparison.Ordinal)) ? "decoder." : "model.decoder.";
                CheckOpt(new Weights(checkpoint, prefix), opt);
                break;
            default:
                throw new NotSupportedException($"No weight check is defined for the architecture {config.Architecture}.");
        }
    }

    private static void CheckLlama(Weights w, LlamaConfig c)
    {
        var embed = w.Require(w.Prefix + "embed_tokens.weight", "vocab_size");
        w.Expect(embed, 0, c.VocabSize, "vocab_size", "rows (tokens)");
        w.Expect(embed, 1, c.HiddenSize, "hidden_size", "columns");
        if (!c.TieWordEmbeddings)
        {
            var head = w.Require("lm_head.weight", "tie_word_embeddings");
            w.Expect(head, 0, c.VocabSize, "vocab_size", "rows (tokens)");
            w.Expect(head, 1, c.HiddenSize, "hidden_size", "columns");
        }

        w.ExpectLayerCount(c.NumHiddenLayers);
        for (var i = 0; i < c.NumHiddenLayers; i++)
        {
            var shape = c.ShapeOf(i);
            var layer = $"{w.Prefix}layers.{i}.";
            var perLayer = c.LayerShapes is not null && shape != c.GlobalShape;
            var q = w.Require(layer + "self_attn.q_proj.weight", "num_attention_heads");
            w.ExpectHeads(q, shape.NumAttentionHeads, c.HeadDim, Key(perLayer, i, "num_attention_heads"));
            w.Expect(q, 1, c.HiddenSize, "hidden_size", "columns");
            var k = w.Require(layer + "self_attn.k_proj.weight", "num_key_value_heads");
            w.ExpectHeads(k, shape.NumKeyValueHeads, c.HeadDim, Key(perLayer, i, "num_key_value_heads"));
            var gate = w.Require(layer + "mlp.gate_proj.weight", "intermediate_size");
            w.Expect(gate, 0, shape.IntermediateSize, Key(perLayer, i, "intermediate_size"), "rows");
            w.Expect(gate, 1, c.HiddenSize, "hidden_size", "columns");
            if (w.Find(layer + "mlp.up_proj.weight") is { } up)
                w.Expect(up, 0, shape.IntermediateSize, Key(perLayer, i, "intermediate_size"), "rows");
        }
    }

    private static void CheckOpt(Weights w, OptConfig c)
    {
        var embed = w.Require(w.Prefix + "embed_tokens.weight", "vocab_size");
        w.Expect(embed, 0, c.VocabSize, "vocab_size", "rows (tokens)");
        w.Expect(embed, 1, c.WordEmbedProjDim, c.HasProjections ? "word_embed_proj_dim" : "hidden_size", "columns");
        if (!c.TieWordEmbeddings)
        {
            var head = w.Require("lm_head.weight", "tie_word_embeddings");
            w.Expect(head, 0, c.VocabSize, "vocab_size", "rows (tokens)");
        }

        var positions = w.Require(w.Prefix + "embed_positions.weight", "max_position_embeddings");
        w.Expect(positions, 0, c.MaxPositionEmbeddings, "max_position_embeddings", $"rows (positions + {OptConfig.PositionOffset})", OptConfig.PositionOffset);
        w.Expect(positions, 1, c.HiddenSize, "hidden_size", "columns");
        if (c.HasProjections)
        {
            var projectIn = w.Require(w.Prefix + "project_in.weight", "word_embed_proj_dim");
            w.Expect(projectIn, 0, c.HiddenSize, "hidden_size", "rows");
            w.Expect(projectIn, 1, c.WordEmbedProjDim, "word_embed_proj_dim", "columns");
        }

        w.ExpectLayerCount(c.NumHiddenLayers);
        for (var i = 0; i < c.NumHiddenLayers; i++)
        {
            var shape = c.ShapeOf(i);
            var layer = $"{w.Prefix}layers.{i}.";
            var perLayer = c.LayerShapes is not null && shape != c.GlobalShape;
            var q = w.Require(layer + "self_attn.q_proj.weight", "num_attention_heads");
            w.ExpectHeads(q, shape.NumAttentionHeads, c.HeadDim, Key(perLayer, i, "num_attention_heads"));
            w.Expect(q, 1, c.HiddenSize, "hidden_size", "columns");
            var fc1 = w.Require(layer + "fc1.weight", "ffn_dim");
            w.Expect(fc1, 0, shape.FfnDim, Key(perLayer, i, "ffn_dim"), "rows");
            w.Expect(fc1, 1, c.HiddenSize, "hidden_size", "columns");
        }
    }

    private static string Key(bool perLayer, int layer, string key) =>
        perLayer ? $"per_layer_config.{layer.ToString(CultureInfo.InvariantCulture)}.{key}" : key;

    [GeneratedRegex(@"layers\.(\d+)\.", RegexOptions.CultureInvariant)]
    private static partial Regex LayerIndex();

    /// <summary>The checkpoint's headers, with the error messages of the check.</summary>
    private sealed class Weights(CheckpointFolder checkpoint, string prefix)
    {
        public string Prefix { get; } = prefix;

        public SafeTensorInfo? Find(string name) => checkpoint.Contains(name) ? checkpoint.GetInfo(name) : null;

        public SafeTensorInfo Require(string name, string key) =>
            Find(name) ?? throw Error(key, $"the weights have no tensor '{name}', which this key describes; the checkpoint does not fit its {CheckpointFolder.ConfigFileName}.");

        /// <summary>Dimension <paramref name="dim"/> of a matrix must be <paramref name="value"/> + <paramref name="offset"/>.</summary>
        public void Expect(SafeTensorInfo tensor, int dim, long value, string key, string what, long offset = 0)
        {
            if (tensor.Rank != 2)
                throw Error(key, $"the weights' tensor '{tensor.Name}' has shape [{string.Join(", ", tensor.Shape)}], not a matrix.");
            var actual = tensor.Dim(dim);
            if (actual != value + offset)
                throw Error(key, $"is {N(value)}, but the weights say {N(actual - offset)}: '{tensor.Name}' has {N(actual)} {what}.");
        }

        /// <summary>Rows of a projection = heads × head_dim; names the head count when head_dim divides the rows, else head_dim.</summary>
        public void ExpectHeads(SafeTensorInfo tensor, int heads, int headDim, string key)
        {
            if (tensor.Rank != 2)
                throw Error(key, $"the weights' tensor '{tensor.Name}' has shape [{string.Join(", ", tensor.Shape)}], not a matrix.");
            var rows = tensor.Dim(0);
            if (headDim <= 0)
                throw Error("head_dim", $"is {N(headDim)} ({key} {N(heads)}), but the weights' '{tensor.Name}' has {N(rows)} rows.");
            if (rows == (long)heads * headDim)
                return;
            if (rows % headDim == 0)
                throw Error(key, $"is {N(heads)}, but the weights say {N(rows / headDim)}: '{tensor.Name}' has {N(rows)} rows, {N(rows / headDim)} heads of head_dim {N(headDim)}.");
            throw Error("head_dim", $"is {N(headDim)} ({key} {N(heads)}), but the weights' '{tensor.Name}' has {N(rows)} rows, which is not a multiple of it.");
        }

        public void ExpectLayerCount(int layers)
        {
            var indices = new HashSet<int>();
            var regex = LayerIndex();
            foreach (var name in checkpoint.TensorNames)
            {
                if (!name.StartsWith(Prefix + "layers.", StringComparison.Ordinal))
                    continue;
                var match = regex.Match(name, Prefix.Length);
                if (match.Success && match.Index == Prefix.Length && int.TryParse(match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
                    indices.Add(index);
            }

            var present = indices.Count == 0 ? 0 : indices.Max() + 1;
            if (layers == present && indices.Count == present)
                return;
            var what = indices.Count == 0
                ? $"the weights hold no layer ('{Prefix}layers.N.*')"
                : indices.Count == present
                    ? $"the weights hold {N(present)} layers ('{Prefix}layers.0' … '{Prefix}layers.{present - 1}')"
                    : $"the weights hold {N(indices.Count)} layers with indices up to {N(present - 1)} (some are missing)";
            throw Error("num_hidden_layers", $"is {N(layers)}, but {what}.");
        }

        private CheckpointFormatException Error(string key, string problem) => new(checkpoint.ConfigPath, problem, key);

        private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);
    }
}
