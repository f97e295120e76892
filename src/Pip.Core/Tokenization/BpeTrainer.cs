using System.Text.RegularExpressions;

namespace Pip.Tokenization;

/// <summary>
/// Trains a byte-level BPE vocabulary (GPT-2 style) on text, deterministically: the same texts and settings give the
/// same model.
/// </summary>
/// <remarks>
/// Text is split around the special tokens, then into words with the GPT-2 regex (as the ByteLevel pre-tokenizer that
/// <see cref="HfTokenizerWriter"/> writes does), and each word is written in <see cref="ByteLevelAlphabet"/>. Ids:
/// special tokens first, then the 256 byte characters in byte order, then one token per merge. Each step merges the
/// most frequent adjacent pair (ties: the pair of smaller ids), until <see cref="VocabSize"/> tokens exist or no pair
/// occurs <see cref="MinFrequency"/> times.
/// </remarks>
public sealed class BpeTrainer
{
    private static readonly Regex WordRegex = new(HfPreTokenizer.Gpt2Pattern, HfJson.PatternOptions);

    /// <summary>Creates a trainer.</summary>
    /// <param name="vocabSize">The largest number of tokens (special tokens and the 256 byte tokens included).</param>
    /// <param name="minFrequency">The fewest occurrences a pair needs to be merged (at least 1).</param>
    /// <param name="specialTokens">Special tokens (BOS, EOS, ...), given the first ids.</param>
    /// <exception cref="ArgumentException">The settings are out of range or the special tokens repeat.</exception>
    public BpeTrainer(int vocabSize, int minFrequency = 2, IReadOnlyList<string>? specialTokens = null)
    {
        SpecialTokens = specialTokens is null ? [] : [.. specialTokens];
        if (SpecialTokens.Any(string.IsNullOrEmpty) || SpecialTokens.Distinct(StringComparer.Ordinal).Count() != SpecialTokens.Count)
        {
            throw new ArgumentException("Special tokens must be non-empty and distinct.", nameof(specialTokens));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 256 + SpecialTokens.Count);
        ArgumentOutOfRangeException.ThrowIfLessThan(minFrequency, 1);
        VocabSize = vocabSize;
        MinFrequency = minFrequency;
    }

    /// <summary>The largest number of tokens.</summary>
    public int VocabSize { get; }

    /// <summary>The fewest occurrences a pair needs to be merged.</summary>
    public int MinFrequency { get; }

    /// <summary>The special tokens, which take the first ids.</summary>
    public IReadOnlyList<string> SpecialTokens { get; }

    /// <summary>Trains on <paramref name="texts"/>.</summary>
    /// <param name="texts">The training texts (documents or lines).</param>
    /// <returns>The vocabulary and merges.</returns>
    public ByteLevelBpeModel Train(IEnumerable<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var tokens = new List<string>(SpecialTokens);
        int firstByteId = tokens.Count;
        for (int b = 0; b < 256; b++)
        {
            tokens.Add(ByteLevelAlphabet.ByteToChar((byte)b).ToString());
        }

        var tokenIds = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Count; i++)
        {
            tokenIds[tokens[i]] = i;
        }

        Dictionary<string, long> wordCounts = CountWords(texts);
        string[] uniqueWords = [.. wordCounts.Keys.Order(StringComparer.Ordinal)];
        var words = new List<int>[uniqueWords.Length];
        var counts = new long[uniqueWords.Length];
        for (int w = 0; w < uniqueWords.Length; w++)
        {
            string word = uniqueWords[w];
            counts[w] = wordCounts[word];
            var symbols = new List<int>(word.Length);
            foreach (char c in word)
            {
                ByteLevelAlphabet.TryCharToByte(c, out byte b);
                symbols.Add(firstByteId + b);
            }

            words[w] = symbols;
        }

        var pairCounts = new Dictionary<long, long>();
        var pairWords = new Dictionary<long, HashSet<int>>();
        for (int w = 0; w < words.Length; w++)
        {
            List<int> s = words[w];
            for (int i = 0; i + 1 < s.Count; i++)
            {
                long key = Key(s[i], s[i + 1]);
                pairCounts[key] = pairCounts.GetValueOrDefault(key) + counts[w];
                AddWord(pairWords, key, w);
            }
        }

        // Max-heap on (count, then smaller pair key) through a min-heap on (-count, key); stale entries are skipped.
        var heap = new PriorityQueue<long, (long NegCount, long Key)>();
        foreach (KeyValuePair<long, long> kv in pairCounts)
        {
            heap.Enqueue(kv.Key, (-kv.Value, kv.Key));
        }

        var merges = new List<BpeMerge>();
        var changed = new HashSet<long>();
        while (tokens.Count < VocabSize && heap.TryDequeue(out long best, out (long NegCount, long Key) priority))
        {
            long count = pairCounts.GetValueOrDefault(best);
            if (count != -priority.NegCount || count == 0)
            {
                continue;
            }

            if (count < MinFrequency)
            {
                break;
            }

            int left = (int)(best >> 32);
            int right = (int)(best & 0xFFFFFFFF);
            // Two different pairs can spell the same token; like Hugging Face's trainer, reuse its id.
            string mergedToken = tokens[left] + tokens[right];
            if (!tokenIds.TryGetValue(mergedToken, out int newId))
            {
                newId = tokens.Count;
                tokens.Add(mergedToken);
                tokenIds.Add(mergedToken, newId);
            }

            merges.Add(new BpeMerge(tokens[left], tokens[right]));

            changed.Clear();
            foreach (int w in pairWords[best])
            {
                List<int> s = words[w];
                if (!Contains(s, left, right))
                {
                    continue;
                }

                for (int i = 0; i + 1 < s.Count; i++)
                {
                    Bump(pairCounts, changed, Key(s[i], s[i + 1]), -counts[w]);
                }

                var merged = new List<int>(s.Count);
                for (int i = 0; i < s.Count; i++)
                {
                    if (i + 1 < s.Count && s[i] == left && s[i + 1] == right)
                    {
                        merged.Add(newId);
                        i++;
                    }
                    else
                    {
                        merged.Add(s[i]);
                    }
                }

                words[w] = merged;
                for (int i = 0; i + 1 < merged.Count; i++)
                {
                    long key = Key(merged[i], merged[i + 1]);
                    Bump(pairCounts, changed, key, counts[w]);
                    AddWord(pairWords, key, w);
                }
            }

            pairWords.Remove(best);
            foreach (long key in changed)
            {
                long c = pairCounts.GetValueOrDefault(key);
                if (c > 0)
                {
                    heap.Enqueue(key, (-c, key));
                }
            }
        }

        return new ByteLevelBpeModel(tokens, merges, SpecialTokens);
    }

    private Dictionary<string, long> CountWords(IEnumerable<string> texts)
    {
        var splitter = new AddedTokenSplitter(SpecialTokens.Select(t => (t, new HfAddedToken(0, t, true, false, false, false, false))));
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (string text in texts)
        {
            if (text is null)
            {
                continue;
            }

            foreach (TextSegment segment in splitter.Split(text))
            {
                if (segment.TokenId is not null)
                {
                    continue;
                }

                string part = text.Substring(segment.Start, segment.Length);
                foreach (ValueMatch m in WordRegex.EnumerateMatches(part))
                {
                    string word = ByteLevelAlphabet.Encode(part.Substring(m.Index, m.Length));
                    counts[word] = counts.GetValueOrDefault(word) + 1;
                }
            }
        }

        return counts;
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    private static bool Contains(List<int> s, int left, int right)
    {
        for (int i = 0; i + 1 < s.Count; i++)
        {
            if (s[i] == left && s[i + 1] == right)
            {
                return true;
            }
        }

        return false;
    }

    private static void Bump(Dictionary<long, long> pairCounts, HashSet<long> changed, long key, long delta)
    {
        long value = pairCounts.GetValueOrDefault(key) + delta;
        if (value == 0)
        {
            pairCounts.Remove(key);
        }
        else
        {
            pairCounts[key] = value;
        }

        changed.Add(key);
    }

    private static void AddWord(Dictionary<long, HashSet<int>> pairWords, long key, int word)
    {
        if (!pairWords.TryGetValue(key, out HashSet<int>? set))
        {
            pairWords[key] = set = [];
        }

        set.Add(word);
    }
}
