using System.Buffers.Binary;

namespace Pip.Core.Tests.Checkpoints;

/// <summary>Small llama2.c checkpoints and tokenizers written by the tests, and the bundled stories260K model.</summary>
internal static class Llama2CFixtures
{
    /// <summary>
    /// Writes a llama2.c checkpoint whose float k after the header is k itself (exact in float32 below 2^24), so a test can
    /// tell where every value came from. <paramref name="vocab"/> is stored negated when <paramref name="untied"/>.
    /// </summary>
    public static string WriteModel(string path, int dim = 8, int hidden = 12, int layers = 2, int heads = 2, int kvHeads = 1, int vocab = 6, int seqLen = 4, bool untied = false)
    {
        int headSize = dim / heads, kvDim = kvHeads * headSize;
        long floats = (untied ? 2L : 1L) * vocab * dim + layers * (2L * dim + 2L * dim * dim + 2L * kvDim * dim + 3L * dim * hidden) + dim + (long)seqLen * headSize;
        var bytes = new byte[28 + 4 * floats];
        WriteHeader(bytes, dim, hidden, layers, heads, kvHeads, untied ? -vocab : vocab, seqLen);
        for (long k = 0; k < floats; k++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan((int)(28 + 4 * k)), k);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Writes a file holding just a header (and <paramref name="extraBytes"/> zero bytes).</summary>
    public static string WriteHeaderOnly(string path, int[] header, int extraBytes = 0)
    {
        var bytes = new byte[4 * header.Length + extraBytes];
        for (int i = 0; i < header.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4 * i), header[i]);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Writes a llama2.c tokenizer.bin with the given (piece, score) entries, spaces as llama2.c writes them.</summary>
    public static string WriteTokenizer(string path, IEnumerable<(string Piece, float Score)> tokens, int maxTokenLength = 16)
    {
        using var stream = File.Create(path);
        using var writer = new BinaryWriter(stream);
        writer.Write(maxTokenLength);
        foreach (var (piece, score) in tokens)
        {
            var utf8 = System.Text.Encoding.UTF8.GetBytes(piece);
            writer.Write(score);
            writer.Write(utf8.Length);
            writer.Write(utf8);
        }
        return path;
    }

    /// <summary>A 6-token llama2.c vocabulary: unk, BOS, EOS as llama2.c exports them, then " a", "b", " ab".</summary>
    public static (string, float)[] SixTokens => [("<unk>", 0), ("\n<s>\n", 0), ("\n</s>\n", 0), (" a", -1), ("b", -2), (" ab", -3)];

    /// <summary>The repository root (the folder holding Pip.sln).</summary>
    public static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Pip.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Pip.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The bundled stories260K Hugging Face folder.</summary>
    public static string Stories260KFolder => Path.Combine(RepoRoot(), "models", "stories260K");

    /// <summary>A file of the original llama2.c release bundled beside it (stories260K.bin, tok512.bin, tok512.model).</summary>
    public static string Stories260KSource(string file) => Path.Combine(Stories260KFolder, "source", file);

    /// <summary>Token ids and a greedy continuation of stories260K recorded with Hugging Face tokenizers and transformers (tests/Fixtures).</summary>
    public static string TransformersFixture => Path.Combine(RepoRoot(), "tests", "Fixtures", "stories260K-transformers.json");

    private static void WriteHeader(byte[] bytes, params int[] values)
    {
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4 * i), values[i]);
    }
}
