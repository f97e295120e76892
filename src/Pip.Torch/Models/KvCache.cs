using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>
/// A growing key/value cache for incremental decoding: one <see cref="LayerKvCache"/> per decoder layer. The cache owns
/// its tensors (they are kept out of every dispose scope) and frees them on <see cref="Dispose"/>. It is meant for
/// inference: cached keys and values are detached, so no gradient flows through them.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly LayerKvCache[] _layers;

    /// <summary>Creates an empty cache.</summary>
    /// <param name="layerCount">The number of decoder layers of the model it serves.</param>
    public KvCache(int layerCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(layerCount);
        _layers = new LayerKvCache[layerCount];
        for (var i = 0; i < layerCount; i++) _layers[i] = new LayerKvCache();
    }

    /// <summary>The number of layers.</summary>
    public int LayerCount => _layers.Length;

    /// <summary>The number of cached positions (those of layer 0; 0 for an empty cache).</summary>
    public long Length => _layers.Length == 0 ? 0 : _layers[0].Length;

    /// <summary>The cache of one layer.</summary>
    /// <param name="layer">The layer index.</param>
    public LayerKvCache this[int layer] => _layers[layer];

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var layer in _layers) layer.Dispose();
    }
}

/// <summary>The cached (rotated) keys and values of one attention layer, shapes [batch, kv_heads, positions, head_dim].</summary>
public sealed class LayerKvCache : IDisposable
{
    /// <summary>The cached keys, or null while empty.</summary>
    public Tensor? Keys { get; private set; }

    /// <summary>The cached values, or null while empty.</summary>
    public Tensor? Values { get; private set; }

    /// <summary>The number of cached positions.</summary>
    public long Length => Keys is null ? 0 : Keys.shape[2];

    /// <summary>
    /// Appends new keys and values along the position dimension and returns the whole cached keys and values. The
    /// returned tensors belong to the cache: do not dispose them.
    /// </summary>
    /// <param name="keys">New keys [batch, kv_heads, new, head_dim] (after rotary embedding).</param>
    /// <param name="values">New values [batch, kv_heads, new, head_dim].</param>
    /// <returns>All keys and values, [batch, kv_heads, cached + new, head_dim].</returns>
    public (Tensor Keys, Tensor Values) Append(Tensor keys, Tensor values)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(values);
        if (Keys is null || Values is null)
        {
            Keys = keys.detach().clone().DetachFromDisposeScope();
            Values = values.detach().clone().DetachFromDisposeScope();
        }
        else
        {
            if (keys.shape[0] != Keys.shape[0] || keys.shape[1] != Keys.shape[1] || keys.shape[3] != Keys.shape[3])
                throw new ArgumentException(
                    $"new keys [{string.Join(", ", keys.shape)}] do not fit the cached keys [{string.Join(", ", Keys.shape)}].", nameof(keys));
            var k = cat(new[] { Keys, keys.detach() }, 2).DetachFromDisposeScope();
            var v = cat(new[] { Values, values.detach() }, 2).DetachFromDisposeScope();
            Keys.Dispose();
            Values.Dispose();
            Keys = k;
            Values = v;
        }
        return (Keys, Values);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Keys?.Dispose();
        Values?.Dispose();
        Keys = null;
        Values = null;
    }
}
