using System.Text;

namespace Pip.Tokenization;

/// <summary>
/// The GPT-2 byte-to-character table that byte-level BPE tokenizers (GPT-2, Llama 3, Qwen2) use: every byte maps to
/// one printable character, so a token's bytes can be written as a JSON string (a space becomes <c>Ġ</c>, a newline
/// <c>Ċ</c>).
/// </summary>
/// <remarks>
/// Printable Latin-1 bytes (<c>!</c>..<c>~</c>, <c>¡</c>..<c>¬</c>, <c>®</c>..<c>ÿ</c>) map to themselves; the other
/// 68 bytes map, in byte order, to U+0100 onwards.
/// </remarks>
public static class ByteLevelAlphabet
{
    private static readonly char[] ByteToCharTable = BuildTable();
    private static readonly Dictionary<char, byte> CharToByteTable = BuildReverse(ByteToCharTable);

    /// <summary>The character that stands for <paramref name="value"/>.</summary>
    /// <param name="value">A byte.</param>
    /// <returns>Its character in the byte-level alphabet.</returns>
    public static char ByteToChar(byte value) => ByteToCharTable[value];

    /// <summary>The byte a character of the alphabet stands for.</summary>
    /// <param name="c">A character.</param>
    /// <param name="value">The byte, when <paramref name="c"/> is in the alphabet.</param>
    /// <returns><see langword="true"/> when <paramref name="c"/> is one of the 256 characters of the alphabet.</returns>
    public static bool TryCharToByte(char c, out byte value) => CharToByteTable.TryGetValue(c, out value);

    /// <summary>The 256 characters of the alphabet, in byte order (index = byte value).</summary>
    public static IReadOnlyList<char> Characters => ByteToCharTable;

    /// <summary>Writes the UTF-8 bytes of <paramref name="text"/> in the byte-level alphabet.</summary>
    /// <param name="text">Any text.</param>
    /// <returns>One alphabet character per UTF-8 byte of <paramref name="text"/>.</returns>
    public static string Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, static (span, b) =>
        {
            for (int i = 0; i < b.Length; i++)
            {
                span[i] = ByteToCharTable[b[i]];
            }
        });
    }

    /// <summary>Reads the bytes that a byte-level string stands for.</summary>
    /// <param name="token">A string of alphabet characters.</param>
    /// <param name="bytes">The bytes, when every character is in the alphabet.</param>
    /// <returns><see langword="false"/> when a character of <paramref name="token"/> is not in the alphabet.</returns>
    public static bool TryDecode(string token, out byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(token);
        bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            if (!CharToByteTable.TryGetValue(token[i], out bytes[i]))
            {
                bytes = [];
                return false;
            }
        }

        return true;
    }

    private static char[] BuildTable()
    {
        var table = new char[256];
        var assigned = new bool[256];
        foreach ((int from, int to) in new[] { ('!', '~'), ('¡', '¬'), ('®', 'ÿ') })
        {
            for (int b = from; b <= to; b++)
            {
                table[b] = (char)b;
                assigned[b] = true;
            }
        }

        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            if (!assigned[b])
            {
                table[b] = (char)(256 + next++);
            }
        }

        return table;
    }

    private static Dictionary<char, byte> BuildReverse(char[] table)
    {
        var reverse = new Dictionary<char, byte>(256);
        for (int b = 0; b < table.Length; b++)
        {
            reverse.Add(table[b], (byte)b);
        }

        return reverse;
    }
}
