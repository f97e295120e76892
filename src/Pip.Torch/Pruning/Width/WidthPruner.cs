using Pip.Checkpoints;
using Pip.Torch.Models;

namespace Pip.Torch.Pruning.Width;

/// <summary>
/// Structural width pruning of a <see cref="LlamaForCausalLM"/> or an <see cref="OptForCausalLM"/>: removes attention heads (by key/value group) and MLP
/// intermediate channels, replacing the projections by smaller ones so that the model really shrinks, and updates
/// <see cref="LlamaForCausalLM.Config"/> (a standard configuration when all layers keep one shape, per-layer shapes
/// otherwise; see <see cref="LlamaConfig.LayerShapes"/>).
/// </summary>
/// <remarks>
/// <para>Heads are removed a key/value group at a time, so grouped-query attention stays consistent: removing group j
/// of a layer with G = heads / kv_heads removes k_proj and v_proj rows j·d … j·d+d-1 (d = head_dim), the q_proj rows
/// of query heads j·G … j·G+G-1, and the o_proj input columns of those query heads; q/k/v biases (Qwen2,
/// attention_bias) go with their rows. G is unchanged. For multi-head attention (G = 1) a group is one head.</para>
/// <para>Removing channel c of an MLP removes row c of gate_proj and up_proj (and their bias entries) and column c of
/// down_proj.</para>
/// <para>OPT has multi-head attention, so a "key/value group" of a <see cref="WidthPruningPlan"/> is one head h: rows
/// h·d … h·d+d-1 of q_proj, k_proj and v_proj (with their bias entries) and the same input columns of out_proj go;
/// out_proj's bias stays. An OPT channel c is row c of fc1 (and its bias entry) and column c of fc2; fc2's bias stays.
/// The configuration becomes a standard one with a smaller <c>ffn_dim</c> and/or <c>num_attention_heads</c> when
/// every layer agrees, per-layer shapes otherwise (see <see cref="OptConfig.LayerShapes"/>). Hugging Face transformers'
/// <c>OPTForCausalLM</c> loads a uniformly FFN-pruned checkpoint, but no head-pruned one (it derives head_dim as
/// hidden_size / num_attention_heads and builds q/k/v/out_proj as hidden_size × hidden_size; Pip writes
/// <c>head_dim</c>, which it ignores) and no per-layer one (it reads no <c>per_layer_config</c>): those checkpoints
/// are for Pip (transformers' layers would have the unpruned shapes, so the stored weights do not fit them).</para>
/// <para>The function of the pruned model equals that of the original with the removed heads' o_proj input columns
/// and the removed channels' down_proj columns set to zero. At least one group and one channel must remain in each
/// layer (removing a whole sub-layer is not supported: remove the layer instead). Parameters are copied under
/// no_grad; their type, device and requires_grad are kept. Forward hooks registered on the replaced projections are
/// lost. Every request is checked before anything changes, so an invalid request leaves the model as it was.</para>
/// </remarks>
public static class WidthPruner
{
    /// <summary>Removes key/value groups (with their query heads) from one layer's attention.</summary>
    /// <param name="model">The model.</param>
    /// <param name="layer">The layer index.</param>
    /// <param name="kvGroupsToRemove">Key/value head indices, 0 … kv_heads-1 of that layer; duplicates are ignored.</param>
    /// <returns>The model's new configuration.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The layer or a group does not exist.</exception>
    /// <exception cref="ArgumentException">Every group of the layer would be removed.</exception>
    public static LlamaConfig PruneHeads(this LlamaForCausalLM model, int layer, IReadOnlyCollection<int> kvGroupsToRemove)
    {
        ArgumentNullException.ThrowIfNull(kvGroupsToRemove);
        return model.Prune(new WidthPruningPlan { KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [layer] = kvGroupsToRemove } });
    }

    /// <summary>Removes intermediate channels from one layer's MLP.</summary>
    /// <param name="model">The model.</param>
    /// <param name="layer">The layer index.</param>
    /// <param name="channels">Channel indices, 0 … intermediate_size-1 of that layer; duplicates are ignored.</param>
    /// <returns>The model's new configuration.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The layer or a channel does not exist.</exception>
    /// <exception cref="ArgumentException">Every channel of the layer would be removed.</exception>
    public static LlamaConfig PruneChannels(this LlamaForCausalLM model, int layer, IReadOnlyCollection<int> channels)
    {
        ArgumentNullException.ThrowIfNull(channels);
        return model.Prune(new WidthPruningPlan { Channels = new Dictionary<int, IReadOnlyCollection<int>> { [layer] = channels } });
    }

    /// <summary>Applies a whole plan: checks every entry first, then prunes.</summary>
    /// <param name="model">The model.</param>
    /// <param name="plan">Groups and channels to remove, per layer.</param>
    /// <returns>The model's new configuration.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A layer, group or channel does not exist (the message names them).</exception>
    /// <exception cref="ArgumentException">Every group or every channel of some layer would be removed.</exception>
    public static LlamaConfig Prune(this LlamaForCausalLM model, WidthPruningPlan plan)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(plan);
        var layers = model.Layers;

        var heads = new List<(LlamaAttention Attention, int[] Kept)>();
        foreach (var (layer, groups) in plan.KeyValueGroups.OrderBy(p => p.Key))
        {
            var attention = CheckLayer(layers, layer, nameof(plan)).SelfAttn;
            var kept = Kept(groups, (int)attention.NumKeyValueHeads, layer, "key/value group", nameof(plan));
            if (kept is not null) heads.Add((attention, kept));
        }
        var channels = new List<(LlamaMlp Mlp, int[] Kept)>();
        foreach (var (layer, removed) in plan.Channels.OrderBy(p => p.Key))
        {
            var mlp = CheckLayer(layers, layer, nameof(plan)).Mlp;
            var kept = Kept(removed, (int)mlp.IntermediateSize, layer, "channel", nameof(plan));
            if (kept is not null) channels.Add((mlp, kept));
        }

        foreach (var (attention, kept) in heads) attention.KeepKeyValueGroups(kept);
        foreach (var (mlp, kept) in channels) mlp.KeepChannels(kept);
        return model.SyncLayerShapes();
    }

    /// <summary>Removes attention heads from one layer of an OPT model.</summary>
    /// <param name="model">The model.</param>
    /// <param name="layer">The layer index.</param>
    /// <param name="headsToRemove">Head indices, 0 … heads-1 of that layer; duplicates are ignored.</param>
    /// <returns>The model's new configuration.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The layer or a head does not exist.</exception>
    /// <exception cref="ArgumentException">Every head of the layer would be removed.</exception>
    public static OptConfig PruneHeads(this OptForCausalLM model, int layer, IReadOnlyCollection<int> headsToRemove)
    {
        ArgumentNullException.ThrowIfNull(headsToRemove);
        return model.Prune(new WidthPruningPlan { KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [layer] = headsToRemove } });
    }

    /// <summary>Removes FFN channels (fc1 rows, fc2 columns) from one layer of an OPT model.</summary>
    /// <param name="model">The model.</param>
    /// <param name="layer">The layer index.</param>
    /// <param name="channels">Channel indices, 0 … ffn_dim-1 of that layer; duplicates are ignored.</param>
    /// <returns>The model's new configuration.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The layer or a channel does not exist.</exception>
    /// <exception cref="ArgumentException">Every channel of the layer would be removed.</exception>
    public static OptConfig PruneChannels(this OptForCausalLM model, int layer, IReadOnlyCollection<int> channels)
    {
        ArgumentNullException.ThrowIfNull(channels);
        return model.Prune(new WidthPruningPlan { Channels = new Dictionary<int, IReadOnlyCollection<int>> { [layer] = channels } });
    }

    /// <summary>Applies a whole plan to an OPT model (a "key/value group" is one head): checks every entry first, then prunes.</summary>
    /// <param name="model">The model.</param>
    /// <param name="plan">Heads and FFN channels to remove, per layer.</param>
    /// <returns>The model's new configuration.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A layer, head or channel does not exist (the message names them).</exception>
    /// <exception cref="ArgumentException">Every head or every channel of some layer would be removed.</exception>
    public static OptConfig Prune(this OptForCausalLM model, WidthPruningPlan plan)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(plan);
        var layers = model.Layers;
        var heads = new List<(OptAttention Attention, int[] Kept)>();
        foreach (var (layer, removed) in plan.KeyValueGroups.OrderBy(p => p.Key))
        {
            var attention = CheckLayer(layers, layer, nameof(plan)).SelfAttn;
            var kept = Kept(removed, (int)attention.NumHeads, layer, "head", nameof(plan));
            if (kept is not null) heads.Add((attention, kept));
        }
        var channels = new List<(OptDecoderLayer Layer, int[] Kept)>();
        foreach (var (layer, removed) in plan.Channels.OrderBy(p => p.Key))
        {
            var decoderLayer = CheckLayer(layers, layer, nameof(plan));
            var kept = Kept(removed, (int)decoderLayer.FfnDim, layer, "channel", nameof(plan));
            if (kept is not null) channels.Add((decoderLayer, kept));
        }

        foreach (var (attention, kept) in heads) attention.KeepHeads(kept);
        foreach (var (decoderLayer, kept) in channels) decoderLayer.KeepChannels(kept);
        return model.SyncLayerShapes();
    }

    /// <summary>The query heads that share a key/value head: j·G … j·G+G-1 with G = heads / kv_heads.</summary>
    /// <param name="numHeads">The number of query heads.</param>
    /// <param name="numKeyValueHeads">The number of key/value heads (divides <paramref name="numHeads"/>).</param>
    /// <param name="kvGroup">The key/value head index.</param>
    /// <returns>The query head indices, ascending.</returns>
    /// <exception cref="ArgumentException">The counts are not positive or do not divide.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The group does not exist.</exception>
    public static IReadOnlyList<int> QueryHeadsOfGroup(int numHeads, int numKeyValueHeads, int kvGroup)
    {
        if (numHeads <= 0 || numKeyValueHeads <= 0 || numHeads % numKeyValueHeads != 0)
            throw new ArgumentException($"{numHeads} query heads cannot share {numKeyValueHeads} key/value heads evenly.", nameof(numKeyValueHeads));
        if (kvGroup < 0 || kvGroup >= numKeyValueHeads)
            throw new ArgumentOutOfRangeException(nameof(kvGroup), kvGroup, $"There are {numKeyValueHeads} key/value heads.");
        var group = numHeads / numKeyValueHeads;
        return Enumerable.Range(kvGroup * group, group).ToArray();
    }

    private static T CheckLayer<T>(IReadOnlyList<T> layers, int layer, string parameter) =>
        layer >= 0 && layer < layers.Count
            ? layers[layer]
            : throw new ArgumentOutOfRangeException(parameter, $"Layer {layer} does not exist: the model has {layers.Count} layers.");

    /// <summary>The indices kept, ascending, or null when nothing is removed.</summary>
    private static int[]? Kept(IReadOnlyCollection<int> removed, int count, int layer, string unit, string parameter)
    {
        ArgumentNullException.ThrowIfNull(removed, parameter);
        var bad = removed.Where(i => i < 0 || i >= count).Distinct().Order().ToArray();
        if (bad.Length > 0)
            throw new ArgumentOutOfRangeException(parameter, $"Layer {layer}: {unit} indices {string.Join(", ", bad)} are out of range (the layer has {count}).");
        var remove = removed.ToHashSet();
        if (remove.Count == 0)
            return null;
        if (remove.Count == count)
            throw new ArgumentException($"Layer {layer}: removing all {count} of its {unit}s is not supported; keep at least one (or remove the layer).", parameter);
        return Enumerable.Range(0, count).Where(i => !remove.Contains(i)).ToArray();
    }
}
