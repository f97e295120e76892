using Pip.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>
/// Grouped-query self-attention of a Llama-layout decoder layer (Hugging Face <c>self_attn</c>): projections
/// <c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c> (with biases for Qwen2 or <c>attention_bias</c>) and <c>o_proj</c>,
/// rotary embeddings, causal softmax attention scaled by 1/√head_dim.
/// </summary>
/// <remarks>
/// The numbers of query and key/value heads are read from the projection shapes at every call, so a layer whose heads
/// were pruned keeps working; <see cref="HeadDim"/> is fixed.
/// </remarks>
public sealed class LlamaAttention : nn.Module<Tensor, RotaryCache, LayerKvCache?, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face parameter names
    private Linear q_proj;
    private Linear k_proj;
    private Linear v_proj;
    private Linear o_proj;
#pragma warning restore IDE1006

    /// <summary>Creates the attention block with zero-filled parameters and the global head counts of the configuration.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public LlamaAttention(LlamaConfig config, ScalarType dtype, Device? device = null)
        : this(config, (config ?? throw new ArgumentNullException(nameof(config))).GlobalShape, dtype, device)
    {
    }

    /// <summary>Creates the attention block with zero-filled parameters and the head counts of one layer.</summary>
    /// <param name="config">The model configuration (hidden size, head width, biases).</param>
    /// <param name="shape">The layer's shape (its query and key/value head counts are used).</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public LlamaAttention(LlamaConfig config, LayerShape shape, ScalarType dtype, Device? device = null) : base(nameof(LlamaAttention))
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.NumAttentionHeads <= 0 || shape.NumKeyValueHeads <= 0 || shape.NumAttentionHeads % shape.NumKeyValueHeads != 0)
            throw new ArgumentException($"Invalid head counts {shape.NumAttentionHeads}/{shape.NumKeyValueHeads}: both must be positive and the key/value heads must divide the heads.", nameof(shape));
        HeadDim = config.HeadDim;
        var (qkvBias, oBias) = Biases(config);
        long hidden = config.HiddenSize;
        long qWidth = (long)shape.NumAttentionHeads * config.HeadDim;
        long kvWidth = (long)shape.NumKeyValueHeads * config.HeadDim;
        q_proj = ModelParts.Linear(hidden, qWidth, qkvBias, dtype, device);
        k_proj = ModelParts.Linear(hidden, kvWidth, qkvBias, dtype, device);
        v_proj = ModelParts.Linear(hidden, kvWidth, qkvBias, dtype, device);
        o_proj = ModelParts.Linear(qWidth, hidden, oBias, dtype, device);
        RegisterComponents();
    }

    /// <summary>The width of one head.</summary>
    public int HeadDim { get; }

    /// <summary>The query projection, Hugging Face name <c>q_proj</c>.</summary>
    public Linear QProj => q_proj;

    /// <summary>The key projection, Hugging Face name <c>k_proj</c>.</summary>
    public Linear KProj => k_proj;

    /// <summary>The value projection, Hugging Face name <c>v_proj</c>.</summary>
    public Linear VProj => v_proj;

    /// <summary>The output projection, Hugging Face name <c>o_proj</c>.</summary>
    public Linear OProj => o_proj;

    /// <summary>The current number of query heads (from the shape of <c>q_proj</c>).</summary>
    public long NumHeads => q_proj.weight.shape[0] / HeadDim;

    /// <summary>The current number of key/value heads (from the shape of <c>k_proj</c>).</summary>
    public long NumKeyValueHeads => k_proj.weight.shape[0] / HeadDim;

    /// <summary>The number of query heads that share one key/value head (<see cref="NumHeads"/> / <see cref="NumKeyValueHeads"/>).</summary>
    public long GroupSize => NumHeads / NumKeyValueHeads;

    /// <summary>
    /// Keeps only the given key/value groups: for each kept group j (in the given order) the k/v rows of head j, the
    /// q rows of its query heads j·G … j·G+G-1 (G = <see cref="GroupSize"/>) and the matching o_proj input columns;
    /// biases follow their rows, o_proj's bias is kept whole. The four projections are replaced by new, smaller
    /// <see cref="Linear"/> modules (same type, device and requires_grad) registered under the same names; the old
    /// ones are disposed.
    /// </summary>
    /// <param name="keptGroups">Distinct group indices in the current numbering, at least one, checked by the caller.</param>
    internal void KeepKeyValueGroups(IReadOnlyList<int> keptGroups)
    {
        var group = GroupSize;
        var qRows = new List<long>();
        var kvRows = new List<long>();
        foreach (var j in keptGroups)
        {
            for (long h = j * group; h < (j + 1) * group; h++)
                for (long d = 0; d < HeadDim; d++) qRows.Add(h * HeadDim + d);
            for (long d = 0; d < HeadDim; d++) kvRows.Add(j * HeadDim + d);
        }
        using var noGrad = no_grad();
        using var q = tensor(qRows.ToArray(), device: q_proj.weight!.device);
        using var kv = tensor(kvRows.ToArray(), device: k_proj.weight!.device);
        var (oldQ, oldK, oldV, oldO) = (q_proj, k_proj, v_proj, o_proj);
        q_proj = ModelParts.SelectRows(oldQ, q);
        k_proj = ModelParts.SelectRows(oldK, kv);
        v_proj = ModelParts.SelectRows(oldV, kv);
        o_proj = ModelParts.SelectColumns(oldO, q);
        ClearModules();
        register_module("q_proj", q_proj);
        register_module("k_proj", k_proj);
        register_module("v_proj", v_proj);
        register_module("o_proj", o_proj);
        oldQ.Dispose();
        oldK.Dispose();
        oldV.Dispose();
        oldO.Dispose();
    }

    /// <summary>
    /// Gives every projection (q, k, v, o) a bias, zero where it had none, as <c>attention_bias = true</c> asks of a
    /// Llama checkpoint; then adds <paramref name="oBiasIncrement"/> to o_proj's bias. Call under no_grad.
    /// </summary>
    /// <param name="oBiasIncrement">[hidden] added to o_proj's bias, or null.</param>
    internal void EnsureBiases(Tensor? oBiasIncrement)
    {
        foreach (var linear in new[] { q_proj, k_proj, v_proj, o_proj })
        {
            var weight = linear.weight!;
            linear.bias ??= new Parameter(zeros(weight.shape[0], dtype: weight.dtype, device: weight.device), weight.requires_grad);
        }
        if (oBiasIncrement is not null) o_proj.bias!.add_(oBiasIncrement.to(o_proj.bias.dtype));
    }

    /// <summary>Whether q/k/v and o projections have biases in a family: q/k/v for Qwen2 or Llama with attention_bias, o for Llama with attention_bias.</summary>
    internal static (bool QkvBias, bool OBias) Biases(LlamaConfig config) => config.Family switch
    {
        DecoderFamily.Qwen2 => (true, false),
        DecoderFamily.Llama => (config.AttentionBias, config.AttentionBias),
        _ => (false, false),
    };

    /// <summary>Runs attention.</summary>
    /// <param name="hidden">Normalised hidden states [batch, seq, hidden].</param>
    /// <param name="rope">Rotary tables for the <paramref name="hidden"/> positions, [batch, seq, head_dim].</param>
    /// <param name="cache">This layer's key/value cache, or null. With a cache, the new keys/values are appended and
    /// the queries attend to every cached position and causally to the new ones.</param>
    /// <returns>The attention output [batch, seq, hidden].</returns>
    public override Tensor forward(Tensor hidden, RotaryCache rope, LayerKvCache? cache)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(rope);
        using var scope = NewDisposeScope();
        var batch = hidden.shape[0];
        var seq = hidden.shape[1];
        var q = q_proj.call(hidden).view(batch, seq, -1, HeadDim).transpose(1, 2);
        var k = k_proj.call(hidden).view(batch, seq, -1, HeadDim).transpose(1, 2);
        var v = v_proj.call(hidden).view(batch, seq, -1, HeadDim).transpose(1, 2);
        q = rope.Apply(q);
        k = rope.Apply(k);

        long past = 0;
        if (cache is not null)
        {
            past = cache.Length;
            (k, v) = cache.Append(k, v);
        }

        var heads = q.shape[1];
        var kvHeads = k.shape[1];
        if (heads % kvHeads != 0)
            throw new InvalidOperationException($"{heads} query heads cannot share {kvHeads} key/value heads.");
        if (heads != kvHeads)
        {
            var rep = heads / kvHeads;
            k = k.repeat_interleave(rep, dim: 1);
            v = v.repeat_interleave(rep, dim: 1);
        }

        Tensor attended;
        if (past == 0)
        {
            attended = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: seq > 1);
        }
        else
        {
            // Query i sits at absolute position past+i and sees keys 0..past+i.
            var mask = ones(seq, past + seq, dtype: ScalarType.Bool, device: q.device).tril(past);
            attended = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: mask);
        }
        var merged = attended.transpose(1, 2).reshape(batch, seq, heads * HeadDim);
        return o_proj.call(merged).MoveToOuterDisposeScope();
    }
}
