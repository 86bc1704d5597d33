import { describe, expect, it } from 'vitest'
import { csvCell, toCsv } from '@/utils/csv'

describe('csv', () => {
  it('quotes and neutralises formulas', () => {
    expect(csvCell('a,b')).toBe('"a,b"')
    expect(csvCell('say "hi"')).toBe('"say ""hi"""')
    expect(csvCell('=1+1')).toBe("'=1+1")
    expect(toCsv(['名称'], [['中平']])).toBe('\ufeff名称\r\n中平\r\n')
  })
})
