using System.Text;

namespace Pip;

/// <summary>A set of known words, lower-case ASCII, against which a perturber checks whether an edit makes a real word.</summary>
/// <remarks>Immutable and safe to share between threads. Only words made of the letters a–z are kept.</remarks>
public sealed class Lexicon
{
    private readonly HashSet<string> _words;
    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    private Lexicon(HashSet<string> words, string source)
    {
        _words = words;
        _lookup = words.GetAlternateLookup<ReadOnlySpan<char>>();
        Source = source;
    }

    /// <summary>Number of words.</summary>
    public int Count => _words.Count;

    /// <summary>Where the words came from (a file path or a description).</summary>
    public string Source { get; }

    /// <summary>The words (lower case).</summary>
    public IReadOnlyCollection<string> Words => _words;

    /// <summary>Whether <paramref name="word"/> (any case) is in the lexicon.</summary>
    /// <param name="word">The word.</param>
    public bool Contains(string word)
    {
        ArgumentNullException.ThrowIfNull(word);
        return Contains(word.AsSpan());
    }

    /// <summary>Whether <paramref name="word"/> (any case) is in the lexicon.</summary>
    /// <param name="word">The word.</param>
    public bool Contains(ReadOnlySpan<char> word)
    {
        if (word.Length == 0 || word.Length > 256)
        {
            return false;
        }

        Span<char> lower = stackalloc char[word.Length];
        return TryLowerAscii(word, lower) && _lookup.Contains(lower);
    }

    /// <summary>A lexicon of the given words (non-letter and non-ASCII entries are ignored).</summary>
    /// <param name="words">The words, any case.</param>
    /// <param name="source">A description of where they came from.</param>
    public static Lexicon FromWords(IEnumerable<string> words, string source = "words")
    {
        ArgumentNullException.ThrowIfNull(words);
        var set = new HashSet<string>(StringComparer.Ordinal);
        Span<char> buffer = stackalloc char[256];
        foreach (string word in words)
        {
            if (word is null || word.Length == 0 || word.Length > buffer.Length)
            {
                continue;
            }

            Span<char> lower = buffer[..word.Length];
            if (TryLowerAscii(word, lower))
            {
                set.Add(new string(lower));
            }
        }

        return new Lexicon(set, source);
    }

    /// <summary>A lexicon of the words occurring at least <paramref name="minFrequency"/> times in <paramref name="texts"/>.</summary>
    /// <param name="texts">The texts.</param>
    /// <param name="minFrequency">Minimum number of occurrences.</param>
    public static Lexicon FromTexts(IEnumerable<string> texts, int minFrequency = PerturbationConstants.DefaultMinWordFrequency)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentOutOfRangeException.ThrowIfLessThan(minFrequency, 1);
        var counter = new WordCounter();
        foreach (string text in texts)
        {
            counter.Add(text);
        }

        return new Lexicon(counter.Words(minFrequency), "texts");
    }

    /// <summary>A lexicon of the words occurring at least <paramref name="minFrequency"/> times in a text file (read line by line).</summary>
    /// <param name="path">The corpus file.</param>
    /// <param name="minFrequency">Minimum number of occurrences.</param>
    /// <param name="cancellationToken">Cancels reading.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file has no word occurring often enough.</exception>
    public static Lexicon FromFile(string path, int minFrequency = PerturbationConstants.DefaultMinWordFrequency, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(minFrequency, 1);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Corpus file '{path}' does not exist.", path);
        }

        var counter = new WordCounter();
        int lines = 0;
        foreach (string line in File.ReadLines(path, Encoding.UTF8))
        {
            if ((++lines & 0x3FF) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            counter.Add(line);
        }

        HashSet<string> words = counter.Words(minFrequency);
        if (words.Count == 0)
        {
            throw new InvalidDataException($"Corpus file '{path}' has no word (ASCII letters) occurring at least {minFrequency} time(s); a lexicon cannot be built from it.");
        }

        return new Lexicon(words, path);
    }

    /// <summary>A lexicon from a word list file: the first whitespace-separated token of each non-empty line; lines starting with <c>#</c> are comments.</summary>
    /// <param name="path">The word list.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file has no usable word.</exception>
    public static Lexicon LoadWordList(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Word list file '{path}' does not exist.", path);
        }

        IEnumerable<string> words = File.ReadLines(path, Encoding.UTF8)
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && l[0] != '#')
            .Select(l => l.Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries)[0]);
        Lexicon lexicon = FromWords(words, path);
        if (lexicon.Count == 0)
        {
            throw new InvalidDataException($"Word list file '{path}' has no word made of ASCII letters.");
        }

        return lexicon;
    }

    /// <inheritdoc />
    public override string ToString() => $"Lexicon({Count} words from {Source})";

    /// <summary>Lower-cases an ASCII-letter word; false when it has another character.</summary>
    internal static bool TryLowerAscii(ReadOnlySpan<char> word, Span<char> lower)
    {
        for (int i = 0; i < word.Length; i++)
        {
            char c = word[i];
            if (c is >= 'a' and <= 'z')
            {
                lower[i] = c;
            }
            else if (c is >= 'A' and <= 'Z')
            {
                lower[i] = (char)(c + 32);
            }
            else
            {
                return false;
            }
        }

        return true;
    }

    private sealed class WordCounter
    {
        private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);

        public void Add(string text)
        {
            Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> lookup = _counts.GetAlternateLookup<ReadOnlySpan<char>>();
            Span<char> buffer = stackalloc char[PerturbationConstants.MaxWordLength];
            foreach (WordSpan word in WordEditor.FindWords(text))
            {
                if (word.Length > buffer.Length)
                {
                    continue;
                }

                Span<char> lower = buffer[..word.Length];
                if (!TryLowerAscii(text.AsSpan(word.Offset, word.Length), lower))
                {
                    continue;
                }

                if (lookup.TryGetValue(lower, out int count))
                {
                    lookup[lower] = count + 1;
                }
                else
                {
                    lookup.TryAdd(lower, 1);
                }
            }
        }

        public HashSet<string> Words(int minFrequency) =>
            new(_counts.Where(kv => kv.Value >= minFrequency).Select(kv => kv.Key), StringComparer.Ordinal);
    }
}
