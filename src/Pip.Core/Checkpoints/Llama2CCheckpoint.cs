using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Pip.Checkpoints;

/// <summary>The header of a llama2.c checkpoint: seven little-endian int32 values.</summary>
/// <param name="Dim">The model width (<c>dim</c>, Hugging Face <c>hidden_size</c>).</param>
/// <param name="HiddenDim">The FFN width (<c>hidden_dim</c>, <c>intermediate_size</c>).</param>
/// <param name="LayerCount">The number of decoder layers (<c>n_layers</c>).</param>
/// <param name="HeadCount">The number of query heads (<c>n_heads</c>).</param>
/// <param name="KeyValueHeadCount">The number of key/value heads (<c>n_kv_heads</c>).</param>
/// <param name="VocabSize">The vocabulary size (the absolute value of the stored <c>vocab_size</c>).</param>
/// <param name="SharedClassifier">Whether the classifier is the token embedding (the stored <c>vocab_size</c> is positive).</param>
/// <param name="SeqLen">The longest sequence (<c>seq_len</c>, <c>max_position_embeddings</c>).</param>
public sealed record Llama2CHeader(int Dim, int HiddenDim, int LayerCount, int HeadCount, int KeyValueHeadCount, int VocabSize, bool SharedClassifier, int SeqLen)
{
    /// <summary>The header's size in bytes.</summary>
    public const int ByteLength = 28;

    /// <summary>The width of one attention head, <c>dim / n_heads</c>.</summary>
    public int HeadSize => Dim / HeadCount;

    /// <summary>The width of the key and value projections, <c>n_kv_heads × head_size</c>.</summary>
    public int KeyValueDim => KeyValueHeadCount * HeadSize;

    /// <summary>The number of model parameters (the rotary tables, which llama2.c stores too, are not parameters).</summary>
    /// <exception cref="OverflowException">The sizes are too large for a 64-bit count.</exception>
    public long ParameterCount =>
        checked((SharedClassifier ? 1L : 2L) * VocabSize * Dim + LayerCount * LayerParameterCount + Dim);

    /// <summary>The exact size in bytes of a checkpoint with this header.</summary>
    /// <exception cref="OverflowException">The sizes are too large for a 64-bit count.</exception>
    public long FileLength => checked(ByteLength + 4L * (ParameterCount + (long)SeqLen * HeadSize));

    private long LayerParameterCount => checked(2L * Dim + 2L * Dim * Dim + 2L * KeyValueDim * Dim + 3L * Dim * HiddenDim);

    /// <summary>The Hugging Face configuration of the model (<c>LlamaForCausalLM</c>, float32, RMSNorm ε 1e-5, RoPE θ 10000, BOS 1, EOS 2).</summary>
    /// <returns>The configuration.</returns>
    public LlamaConfig ToLlamaConfig() => new()
    {
        Family = DecoderFamily.Llama,
        VocabSize = VocabSize,
        HiddenSize = Dim,
        IntermediateSize = HiddenDim,
        NumHiddenLayers = LayerCount,
        NumAttentionHeads = HeadCount,
        NumKeyValueHeads = KeyValueHeadCount,
        HeadDim = HeadSize,
        RmsNormEps = Llama2CCheckpoint.RmsNormEps,
        RopeTheta = Llama2CCheckpoint.RopeTheta,
        MaxPositionEmbeddings = SeqLen,
        TieWordEmbeddings = SharedClassifier,
        TorchDtype = "float32",
        BosTokenId = Llama2CCheckpoint.BosTokenId,
        EosTokenIds = [Llama2CCheckpoint.EosTokenId],
    };
}

/// <summary>
/// A checkpoint of Andrej Karpathy's llama2.c (the original "v0" format of <c>run.c</c>): the header, then float32
/// weights in llama2.c's order, read as Hugging Face Llama tensors.
/// </summary>
/// <remarks>
/// <para>Layout after the <see cref="Llama2CHeader"/>: token embedding [vocab, dim]; for all layers together
/// rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim], wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim],
/// w1 [L, hidden, dim], w2 [L, dim, hidden], w3 [L, hidden, dim]; the final rms [dim]; the rotary tables
/// freq_cis_real and freq_cis_imag [seq_len, head_size / 2] (skipped: Hugging Face computes them); the classifier
/// [vocab, dim] when <c>vocab_size</c> is negative. Matrices are stored [out, in] as Hugging Face stores them.</para>
/// <para>llama2.c rotates interleaved pairs (dimensions 2i, 2i+1 of a head); Hugging Face Llama rotates halves
/// (i, i + head_size/2). The q and k rows of every head are therefore permuted as transformers'
/// <c>convert_llama_weights_to_hf.py</c> does: new row h·head_size/2 + i of a head is old row 2i + h.</para>
/// <para>Opening checks the header (positive sizes, heads dividing <c>dim</c>, key/value heads dividing heads, an even
/// head size) and that the file length is exactly what the header describes; each problem is a
/// <see cref="CheckpointFormatException"/> naming the file. The llama2.c "version 1/2" export (magic <c>ak42</c>) is
/// refused with a message saying so.</para>
/// </remarks>
public sealed class Llama2CCheckpoint
{
    /// <summary>llama2.c's RMSNorm epsilon.</summary>
    public const double RmsNormEps = 1e-5;

    /// <summary>llama2.c's rotary base.</summary>
    public const double RopeTheta = 10000.0;

    /// <summary>llama2.c's BOS token id.</summary>
    public const int BosTokenId = 1;

    /// <summary>llama2.c's EOS token id.</summary>
    public const int EosTokenId = 2;

    /// <summary>The largest size accepted for any header dimension (2^24), far beyond any llama2.c model.</summary>
    public const int MaxDimension = 1 << 24;

    private const int MagicV1 = 0x616b3432; // "ak42", the header of llama2.c's version 1 and 2 exports

    private Llama2CCheckpoint(string path, Llama2CHeader header)
    {
        FilePath = path;
        Header = header;
    }

    /// <summary>The full path of the checkpoint file.</summary>
    public string FilePath { get; }

    /// <summary>The header.</summary>
    public Llama2CHeader Header { get; }

    /// <summary>Opens and checks a llama2.c checkpoint.</summary>
    /// <param name="path">The <c>.bin</c> file.</param>
    /// <returns>The checkpoint.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The header is malformed or the file size does not match it.</exception>
    public static Llama2CCheckpoint Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"llama2.c checkpoint '{full}' does not exist.", full);
        long length = new FileInfo(full).Length;
        if (length < Llama2CHeader.ByteLength)
            throw new CheckpointFormatException(full, $"the file has {length} bytes, fewer than the {Llama2CHeader.ByteLength}-byte header of a llama2.c checkpoint (7 int32: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len).");
        Span<byte> bytes = stackalloc byte[Llama2CHeader.ByteLength];
        using (var stream = File.OpenRead(full)) stream.ReadExactly(bytes);
        Span<int> v = stackalloc int[7];
        for (int i = 0; i < 7; i++) v[i] = BinaryPrimitives.ReadInt32LittleEndian(bytes[(4 * i)..]);
        if (v[0] == MagicV1)
            throw new CheckpointFormatException(full, "the file starts with the magic 'ak42' of llama2.c's version 1/2 export; only the original (version 0, run.c) format is supported: export with --version 0.");

        string[] names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
        for (int i = 0; i < 7; i++)
        {
            int value = i == 5 && v[i] != int.MinValue ? Math.Abs(v[i]) : v[i];
            if (value <= 0)
                throw new CheckpointFormatException(full, $"{names[i]} is {v[i]}; it must be positive (is this a llama2.c checkpoint?).", names[i]);
            if (value > MaxDimension)
                throw new CheckpointFormatException(full, $"{names[i]} is {v[i]}, more than the {MaxDimension} a llama2.c checkpoint can plausibly have (is this a llama2.c checkpoint?).", names[i]);
        }
        var header = new Llama2CHeader(v[0], v[1], v[2], v[3], v[4], Math.Abs(v[5]), v[5] > 0, v[6]);
        if (header.Dim % header.HeadCount != 0)
            throw new CheckpointFormatException(full, $"n_heads {header.HeadCount} does not divide dim {header.Dim}.", "n_heads");
        if (header.HeadCount % header.KeyValueHeadCount != 0)
            throw new CheckpointFormatException(full, $"n_kv_heads {header.KeyValueHeadCount} does not divide n_heads {header.HeadCount}.", "n_kv_heads");
        if (header.HeadSize % 2 != 0)
            throw new CheckpointFormatException(full, $"the head size dim / n_heads = {header.HeadSize} is odd; rotary embeddings need an even head size.", "n_heads");

        long expected;
        try
        {
            expected = header.FileLength;
        }
        catch (OverflowException e)
        {
            throw new CheckpointFormatException(full, "the header describes more weights than a file can hold (is this a llama2.c checkpoint?).", null, e);
        }
        string shape = $"dim {header.Dim}, hidden_dim {header.HiddenDim}, n_layers {header.LayerCount}, n_heads {header.HeadCount}, n_kv_heads {header.KeyValueHeadCount}, vocab_size {v[5]}, seq_len {header.SeqLen}";
        if (length < expected)
            throw new CheckpointFormatException(full, $"the file has {length} bytes but its header ({shape}) describes {expected}: the file is truncated or the header is wrong.");
        if (length > expected)
            throw new CheckpointFormatException(full, $"the file has {length - expected} bytes after the {expected} its header ({shape}) describes: trailing data, or a header that does not match the weights.");
        return new Llama2CCheckpoint(full, header);
    }

    /// <summary>
    /// The weights as Hugging Face Llama tensors (float32), in the order <c>model.embed_tokens</c>, the layers, the
    /// final norm and (when the classifier is not shared) <c>lm_head</c>. Each tensor's bytes are read from the file
    /// when it is written; memory use stays at one head's rows or one megabyte.
    /// </summary>
    /// <returns>The tensor sources, for <see cref="CheckpointWriter.Save"/> or <see cref="SafeTensorsWriter"/>.</returns>
    public IReadOnlyList<SafeTensorSource> GetTensors()
    {
        var h = Header;
        long dim = h.Dim, kv = h.KeyValueDim, hidden = h.HiddenDim, layers = h.LayerCount;
        long at = Llama2CHeader.ByteLength;
        long Take(long floats)
        {
            long start = at;
            at += 4 * floats;
            return start;
        }

        long embedding = Take(h.VocabSize * dim);
        long rmsAtt = Take(layers * dim);
        long wq = Take(layers * dim * dim);
        long wk = Take(layers * kv * dim);
        long wv = Take(layers * kv * dim);
        long wo = Take(layers * dim * dim);
        long rmsFfn = Take(layers * dim);
        long w1 = Take(layers * hidden * dim);
        long w2 = Take(layers * dim * hidden);
        long w3 = Take(layers * hidden * dim);
        long rmsFinal = Take(dim);
        Take(h.SeqLen * (long)h.HeadSize); // freq_cis_real and freq_cis_imag
        long classifier = at;

        var tensors = new List<SafeTensorSource> { Plain("model.embed_tokens.weight", embedding, h.VocabSize, dim) };
        for (int l = 0; l < h.LayerCount; l++)
        {
            string p = $"model.layers.{l}.";
            tensors.Add(Plain(p + "input_layernorm.weight", rmsAtt + 4 * l * dim, dim));
            tensors.Add(Rotary(p + "self_attn.q_proj.weight", wq + 4 * l * dim * dim, h.HeadCount));
            tensors.Add(Rotary(p + "self_attn.k_proj.weight", wk + 4 * l * kv * dim, h.KeyValueHeadCount));
            tensors.Add(Plain(p + "self_attn.v_proj.weight", wv + 4 * l * kv * dim, kv, dim));
            tensors.Add(Plain(p + "self_attn.o_proj.weight", wo + 4 * l * dim * dim, dim, dim));
            tensors.Add(Plain(p + "post_attention_layernorm.weight", rmsFfn + 4 * l * dim, dim));
            tensors.Add(Plain(p + "mlp.gate_proj.weight", w1 + 4 * l * hidden * dim, hidden, dim));
            tensors.Add(Plain(p + "mlp.down_proj.weight", w2 + 4 * l * dim * hidden, dim, hidden));
            tensors.Add(Plain(p + "mlp.up_proj.weight", w3 + 4 * l * hidden * dim, hidden, dim));
        }
        tensors.Add(Plain("model.norm.weight", rmsFinal, dim));
        if (!h.SharedClassifier) tensors.Add(Plain("lm_head.weight", classifier, h.VocabSize, dim));
        return tensors;
    }

    private SafeTensorSource Plain(string name, long offset, params long[] shape) =>
        new(name, SafeTensorDType.F32, shape, (destination, ct) =>
        {
            long remaining = 4 * shape.Aggregate(1L, (a, b) => a * b);
            using var file = File.OpenHandle(FilePath, FileMode.Open, FileAccess.Read, FileShare.Read);
            var buffer = new byte[(int)Math.Min(remaining, 1 << 20)];
            long position = offset;
            while (remaining > 0)
            {
                ct.ThrowIfCancellationRequested();
                int n = (int)Math.Min(remaining, buffer.Length);
                ReadExactly(file, buffer.AsSpan(0, n), position);
                destination.Write(buffer, 0, n);
                position += n;
                remaining -= n;
            }
        });

    /// <summary>A q or k projection, its rows permuted per head from interleaved to rotate-half order.</summary>
    private SafeTensorSource Rotary(string name, long offset, int heads)
    {
        int headSize = Header.HeadSize, dim = Header.Dim;
        return new SafeTensorSource(name, SafeTensorDType.F32, [(long)heads * headSize, dim], (destination, ct) =>
        {
            using var file = File.OpenHandle(FilePath, FileMode.Open, FileAccess.Read, FileShare.Read);
            int rowBytes = 4 * dim;
            var head = new byte[headSize * rowBytes];
            for (int hd = 0; hd < heads; hd++)
            {
                ct.ThrowIfCancellationRequested();
                ReadExactly(file, head, offset + (long)hd * head.Length);
                for (int half = 0; half < 2; half++)
                {
                    for (int i = 0; i < headSize / 2; i++)
                        destination.Write(head, (2 * i + half) * rowBytes, rowBytes);
                }
            }
        });
    }

    private void ReadExactly(SafeFileHandle file, Span<byte> buffer, long position)
    {
        while (buffer.Length > 0)
        {
            int n = RandomAccess.Read(file, buffer, position);
            if (n <= 0) throw new CheckpointFormatException(FilePath, $"the file ended at byte {position} while reading weights; it changed since it was opened.");
            buffer = buffer[n..];
            position += n;
        }
    }
}
